package nginxconf

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"embed"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/bits"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/template"

	"github.com/gatehousehq/gatehouse/internal/nginxstatus"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

// templates are parsed once; text/template values are safe for concurrent execution and
// carry no per-node state.
var templates = template.Must(template.New("").Funcs(template.FuncMap{"q": quoteArg}).ParseFS(templateFS, "templates/*.tmpl"))

// File is one rendered file of a release.
type File struct {
	Path    string // relative to the release directory, e.g. "http/domain-example.com.conf"
	Content []byte
}

// Rendered is a node's complete configuration release.
type Rendered struct {
	Files []File // sorted by Path
	Hash  string // hex SHA-256 over every path and content; equal configurations hash equally
}

// Layout of a release, relative to its directory. nginx includes http/*.conf inside its http
// block and stream/*.conf inside its stream block.
const (
	GlobalFile = "http/00-gatehouse.conf"
	// UnknownFile holds the default servers that answer names no domain
	// serves, when the node asks for them.
	UnknownFile = "http/01-gatehouse-unknown.conf"
	// StatusFile holds the block that shows nginx's counters to the agent.
	// It sorts after every domain's file, so it never becomes the default
	// server of a listen address.
	StatusFile = nginxstatus.File
	HTTPDir    = "http"
	StreamDir  = "stream"
	AuthDir    = "auth"
)

const maintenanceBody = "This site is down for maintenance. Please try again later."

// Render validates cfg and renders it into one file per upstream, domain and stream, plus a
// global http file and an htpasswd file per domain with basic authentication. The result is
// deterministic: the same configuration in any order of its lists yields the same files and
// hash. Invalid input yields a FieldErrors error and no files.
func Render(cfg NodeConfig) (Rendered, error) {
	c, fe := check(cfg)
	if fe != nil {
		return Rendered{}, fe
	}
	r := renderer{c: c}
	files, err := r.render()
	if err != nil {
		return Rendered{}, err
	}
	return Rendered{Files: files, Hash: hashFiles(files)}, nil
}

func hashFiles(files []File) string {
	h := sha256.New()
	var n [8]byte
	for _, f := range files {
		binary.BigEndian.PutUint64(n[:], uint64(len(f.Path)))
		h.Write(n[:])
		h.Write([]byte(f.Path))
		binary.BigEndian.PutUint64(n[:], uint64(len(f.Content)))
		h.Write(n[:])
		h.Write(f.Content)
	}
	return hex.EncodeToString(h.Sum(nil))
}

type renderer struct {
	c *checked
}

// job renders one file.
type job struct {
	path string
	tmpl string
	data any
	raw  []byte // set instead of tmpl for files that are not templates
}

func (r *renderer) render() ([]File, error) {
	cfg := &r.c.cfg
	jobs := make([]job, 0, 1+len(cfg.Upstreams)+2*len(cfg.Domains)+len(cfg.Streams))
	jobs = append(jobs, job{path: GlobalFile, tmpl: "global.conf.tmpl", data: globalView(cfg)})
	if cfg.UnknownNames != UnknownDefault && len(cfg.Domains) > 0 {
		jobs = append(jobs, job{path: UnknownFile, tmpl: "unknown.conf.tmpl", data: unknownView(cfg)})
	}
	if cfg.Status && len(cfg.Domains) > 0 {
		jobs = append(jobs, job{path: StatusFile, tmpl: "status.conf.tmpl", data: statusView(cfg)})
	}
	for i := range cfg.Upstreams {
		u := &cfg.Upstreams[i]
		jobs = append(jobs, job{
			path: HTTPDir + "/upstream-" + u.Name + ".conf",
			tmpl: "upstream.conf.tmpl",
			data: upstreamView(u, false),
		})
	}
	for i := range cfg.Domains {
		d := &cfg.Domains[i]
		base := fileBase(d.Name)
		view := r.domainView(d, r.c.snippets[i], base)
		jobs = append(jobs, job{path: HTTPDir + "/domain-" + base + ".conf", tmpl: "domain.conf.tmpl", data: view})
		if len(d.BasicAuthUsers) > 0 {
			jobs = append(jobs, job{path: AuthDir + "/" + base + ".htpasswd", raw: htpasswd(d.BasicAuthUsers)})
		}
	}
	for i := range cfg.Streams {
		s := &cfg.Streams[i]
		jobs = append(jobs, job{
			path: StreamDir + "/stream-" + s.Name + ".conf",
			tmpl: "stream.conf.tmpl",
			data: r.streamView(s),
		})
	}

	files := make([]File, len(jobs))
	errs := make([]error, len(jobs))
	workers := min(runtime.GOMAXPROCS(0), max(1, len(jobs)/64))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			var buf bytes.Buffer
			for i := w; i < len(jobs); i += workers {
				j := &jobs[i]
				if j.raw != nil {
					files[i] = File{Path: j.path, Content: j.raw}
					continue
				}
				buf.Reset()
				if err := templates.ExecuteTemplate(&buf, j.tmpl, j.data); err != nil {
					errs[i] = fmt.Errorf("render %s: %w", j.path, err)
					continue
				}
				files[i] = File{Path: j.path, Content: bytes.Clone(buf.Bytes())}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	slices.SortFunc(files, func(a, b File) int { return cmp.Compare(a.Path, b.Path) })
	return files, nil
}

// fileBase turns a punycode server name into a file name part; "*" cannot appear in a valid
// name label, so "_" for the wildcard cannot collide with another domain.
func fileBase(name string) string {
	return strings.Replace(name, "*", "_", 1)
}

func htpasswd(users []BasicAuthUser) []byte {
	sorted := slices.Clone(users)
	slices.SortFunc(sorted, func(a, b BasicAuthUser) int { return cmp.Compare(a.User, b.User) })
	var b bytes.Buffer
	for _, u := range sorted {
		b.WriteString(u.User)
		b.WriteByte(':')
		b.WriteString(u.PasswordHash)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

type globalData struct {
	RealIP *RealIP
	// CacheDir is where the node's cache lives; empty when no route caches.
	CacheDir    string
	CacheZone   string
	CacheSize   string
	CacheMax    string
	NameCount   int
	LongestName int
	BucketSize  int
	MaxSize     int
}

// globalView sizes nginx's server-name hash from the data. nginx stores a name in an element
// of pointer + length + name, aligned to a pointer; a bucket must hold the longest element
// plus a terminating pointer. Buckets sized for two of the longest elements, and a table
// allowed up to four slots per name, let nginx find a layout quickly even for many names.
func globalView(cfg *NodeConfig) globalData {
	count, longest := 0, 0
	for i := range cfg.Domains {
		d := &cfg.Domains[i]
		count += 1 + len(d.Aliases)
		longest = max(longest, len(d.Name))
		for _, a := range d.Aliases {
			longest = max(longest, len(a))
		}
	}
	elt := 8 + (longest+2+7)/8*8
	g := globalData{
		RealIP:      cfg.RealIP,
		NameCount:   count,
		LongestName: longest,
		BucketSize:  max(64, nextPow2(2*elt+8)),
		MaxSize:     max(1024, nextPow2(4*count)),
	}
	if caches(cfg) {
		g.CacheDir, g.CacheZone, g.CacheSize, g.CacheMax = cfg.CacheDir, cacheZone, cacheKeys(cfg.CacheMaxSize), cfg.CacheMaxSize
	}
	return g
}

type unknownData struct {
	HTTP, HTTPS []string // listen lines, default_server included; HTTPS only when a domain has TLS
	Close       bool
}

// unknownView is the default servers of the domains' listeners: plain HTTP
// closes or answers 404, and TLS refuses the handshake (there is no
// certificate to show for a name nobody serves).
func unknownView(cfg *NodeConfig) unknownData {
	v := unknownData{Close: cfg.UnknownNames == UnknownClose}
	v.HTTP = listenLines(cfg.BindAddress, cfg.HTTPPort, " default_server")
	if slices.ContainsFunc(cfg.Domains, func(d Domain) bool { return d.Certificate != nil }) {
		v.HTTPS = listenLines(cfg.BindAddress, cfg.HTTPSPort, " ssl default_server")
	}
	return v
}

type statusData struct {
	Listen     []string
	Host, Path string
	Allow      []string
	// TrustOnly replaces the node's trusted proxies inside the block, so no
	// header a proxy passes on can make a client look local.
	TrustOnly string
}

// statusView is the block nginx's counters are read from: on the domains'
// HTTP listeners, for the agent on the node only.
func statusView(cfg *NodeConfig) statusData {
	v := statusData{
		Listen: listenLines(cfg.BindAddress, cfg.HTTPPort, ""),
		Host:   nginxstatus.Host, Path: nginxstatus.Path,
		Allow: []string{"127.0.0.1", "::1"},
	}
	if b := cfg.BindAddress; b != "" && !slices.Contains(v.Allow, b) {
		v.Allow = append(v.Allow, b)
	}
	if cfg.RealIP != nil {
		v.TrustOnly = "127.0.0.1"
	}
	return v
}

// cacheZone is the node's one cache: at most NodeConfig.CacheMaxSize on
// disk, an answer nobody asked for in a week dropped.
const cacheZone = "gatehouse_cache"

// cacheKeys sizes the shared memory that indexes the cache: a megabyte holds
// about 8,000 keys, enough for a gigabyte of answers of 128 KB on average;
// 10 MB at least, 256 MB at most.
func cacheKeys(maxSize string) string {
	mb, _ := cacheSizeMB(maxSize) // validated
	return strconv.Itoa(min(max(mb/1000, 10), 256)) + "m"
}

// cacheKey is what a domain's cached answers are found by: scheme, host and
// URI, after the domain's cache generation once it has been purged.
func cacheKey(generation int) string {
	const key = "$scheme://$host$request_uri"
	if generation == 0 {
		return key
	}
	return "g" + strconv.Itoa(generation) + ":" + key
}

// caches reports whether any route of the node keeps answers.
func caches(cfg *NodeConfig) bool {
	for i := range cfg.Domains {
		d := &cfg.Domains[i]
		if d.Maintenance {
			continue
		}
		for j := range d.Routes {
			if d.Routes[j].Kind == RouteProxy && d.Routes[j].CacheTTL > 0 {
				return true
			}
		}
	}
	return false
}

func nextPow2(n int) int {
	if n <= 1 {
		return 1
	}
	return 1 << bits.Len(uint(n-1))
}

type upstreamData struct {
	Name      string
	Method    []string
	Servers   []string
	Keepalive int
}

func upstreamView(u *Upstream, stream bool) upstreamData {
	v := upstreamData{Name: u.Name}
	if !stream {
		v.Keepalive = u.Keepalive
	}
	switch u.Method {
	case MethodLeastConn:
		v.Method = []string{"least_conn"}
	case MethodIPHash:
		v.Method = []string{"ip_hash"}
	case MethodRandomTwoLeastConn:
		v.Method = []string{"random two least_conn"}
	case MethodHash:
		m := "hash " + quoteArg(u.HashKey)
		if u.HashConsistent {
			m += " consistent"
		}
		v.Method = []string{m}
	}
	v.Servers = make([]string, len(u.Targets))
	for i, t := range u.Targets {
		var b strings.Builder
		if strings.Contains(t.Host, ":") {
			b.WriteString("[" + t.Host + "]")
		} else {
			b.WriteString(t.Host)
		}
		b.WriteString(":" + strconv.Itoa(t.Port))
		if t.Weight > 0 {
			b.WriteString(" weight=" + strconv.Itoa(t.Weight))
		}
		if t.MaxFails > 0 {
			b.WriteString(" max_fails=" + strconv.Itoa(t.MaxFails))
		}
		if t.FailTimeout > 0 {
			b.WriteString(" fail_timeout=" + strconv.Itoa(t.FailTimeout) + "s")
		}
		if t.Backup {
			b.WriteString(" backup")
		}
		if t.Down {
			b.WriteString(" down")
		}
		v.Servers[i] = b.String()
	}
	return v
}

type streamData struct {
	upstreamData
	UpstreamName   string
	Listen         []string
	ConnectTimeout int
	Timeout        int
}

func (r *renderer) streamView(s *Stream) streamData {
	u := r.c.upByName[s.Upstream]
	v := streamData{
		upstreamData:   upstreamView(u, true),
		UpstreamName:   "gatehouse_stream_" + s.Name,
		ConnectTimeout: u.ConnectTimeout,
		Timeout:        u.ReadTimeout,
	}
	suffix := ""
	if s.Protocol == ProtocolUDP {
		suffix = " udp"
	}
	v.Listen = listenLines(r.c.cfg.BindAddress, s.ListenPort, suffix)
	return v
}

func listenLines(bind string, port int, suffix string) []string {
	p := strconv.Itoa(port)
	switch {
	case bind == "":
		return []string{p + suffix, "[::]:" + p + suffix}
	case strings.Contains(bind, ":"):
		return []string{"[" + bind + "]:" + p + suffix}
	default:
		return []string{bind + ":" + p + suffix}
	}
}

type domainData struct {
	// RateZone declares the domain's rate-limit zone; nil without a limit.
	RateZone *rateZone
	HTTP     *serverData
	HTTPS    *serverData
	// AliasHTTP and AliasHTTPS answer the aliases with a redirect to the
	// primary name, when the domain asks for it.
	AliasHTTP  *serverData
	AliasHTTPS *serverData
}

type serverData struct {
	Listen       []string
	Names        string
	Webroot      string
	Redirect     bool   // the plain-HTTP server only redirects to HTTPS
	RedirectPort string // ":port" when HTTPS is not on 443
	// To is where an alias server sends every request: scheme, primary
	// name and port, without a path; empty for other servers.
	To        string
	Cert, Key string
	HSTS      bool
	MaxBody   string
	Deny      []string
	Allow     []string
	AuthFile  string
	RateLimit *rateZone
	Compress  bool
	// KeepTokens leaves nginx's version in the Server header and error
	// pages to the snippet, which sets server_tokens itself; otherwise every
	// server hides it.
	KeepTokens bool
	// CacheStatus adds X-Cache-Status to the answers (empty, so absent, where
	// no cache was asked).
	CacheStatus bool
	Headers     []Header
	Snippet     []string
	Locations   []locationData
}

type locationData struct {
	Exact bool
	Path  string
	// Guarded answers through a named location reached by try_files, so that the rate limit
	// (preaccess phase), allow/deny and basic authentication (access phase) run before the
	// answer (a "return" in the location itself would run in the earlier rewrite phase and
	// skip them).
	Guarded bool
	Index   int

	Proxy          bool
	ProxyPass      string
	PreserveHost   bool
	WebSocket      bool
	ConnectTimeout int
	ReadTimeout    int
	SendTimeout    int
	CacheTTL       int
	CacheZone      string
	CacheKey       string
	Snippet        []string

	Redirect bool
	Code     int
	Target   string

	Status      int
	Body        string
	ContentType string
}

// rateZone is a domain's limit_req zone and how its servers use it.
type rateZone struct {
	Name  string // gatehouse_rate_ and a hash of the domain's name: stable and free of syntax
	Size  string
	Rate  string // "10r/s"
	Burst int
}

// rateZoneSize is each domain's zone: 1 MB keeps the state of about 16,000
// client addresses, so many domains cost little memory.
const rateZoneSize = "1m"

func rateZoneOf(d *Domain) *rateZone {
	if d.RateLimit == nil {
		return nil
	}
	sum := sha256.Sum256([]byte(d.Name))
	return &rateZone{Name: "gatehouse_rate_" + hex.EncodeToString(sum[:8]), Size: rateZoneSize,
		Rate: strconv.Itoa(d.RateLimit.Rate) + "r/" + string(d.RateLimit.Unit), Burst: d.RateLimit.Burst}
}

func (r *renderer) domainView(d *Domain, snip parsedSnippet, base string) domainData {
	cfg := &r.c.cfg
	names := d.Name
	redirectAliases := d.RedirectAliases && len(d.Aliases) > 0
	if len(d.Aliases) > 0 && !redirectAliases {
		names = d.Name + " " + strings.Join(d.Aliases, " ")
	}
	common := serverData{
		Names:     names,
		Webroot:   cfg.Webroot,
		MaxBody:   d.ClientMaxBodySize,
		Deny:      d.Deny,
		Allow:     d.Allow,
		Headers:   d.ResponseHeaders,
		RateLimit: rateZoneOf(d),
		Compress:  d.Compress,
	}
	if len(d.BasicAuthUsers) > 0 {
		common.AuthFile = strings.TrimSuffix(cfg.ConfigDir, "/") + "/" + AuthDir + "/" + base + ".htpasswd"
	}
	for _, s := range snip.server {
		common.Snippet = append(common.Snippet, s.String())
		common.KeepTokens = common.KeepTokens || s.name == "server_tokens"
	}
	var proxySnippet []string
	for _, s := range snip.proxy {
		proxySnippet = append(proxySnippet, s.String())
	}
	common.Locations = r.locations(d, proxySnippet)
	common.CacheStatus = slices.ContainsFunc(common.Locations, func(l locationData) bool { return l.CacheTTL > 0 })

	v := domainData{RateZone: common.RateLimit}
	http := common
	http.Listen = listenLines(cfg.BindAddress, cfg.HTTPPort, "")
	if d.ForceHTTPS {
		http = serverData{Listen: http.Listen, Names: names, Webroot: cfg.Webroot, Redirect: true}
		if cfg.HTTPSPort != 443 {
			http.RedirectPort = ":" + strconv.Itoa(cfg.HTTPSPort)
		}
	}
	v.HTTP = &http
	if d.Certificate != nil {
		https := common
		suffix := " ssl"
		if d.HTTP2 {
			suffix += " http2"
		}
		https.Listen = listenLines(cfg.BindAddress, cfg.HTTPSPort, suffix)
		https.Cert, https.Key = d.Certificate.CertPath, d.Certificate.KeyPath
		https.HSTS = d.HSTS
		v.HTTPS = &https
	}
	if redirectAliases {
		r.aliasViews(&v, d)
	}
	return v
}

// aliasViews adds the servers that redirect a domain's aliases to its
// primary name: plain HTTP keeps its scheme unless the domain forces HTTPS
// (and keeps answering ACME challenges, so certificates can cover the
// aliases); HTTPS goes to HTTPS. Names and ports were validated, so the
// targets hold nothing nginx would read as syntax.
func (r *renderer) aliasViews(v *domainData, d *Domain) {
	cfg := &r.c.cfg
	aliases := strings.Join(d.Aliases, " ")
	httpsTo := "https://" + d.Name
	if cfg.HTTPSPort != 443 {
		httpsTo += ":" + strconv.Itoa(cfg.HTTPSPort)
	}
	httpTo := "http://" + d.Name
	if cfg.HTTPPort != 80 {
		httpTo += ":" + strconv.Itoa(cfg.HTTPPort)
	}
	if d.ForceHTTPS && d.Certificate != nil {
		httpTo = httpsTo
	}
	v.AliasHTTP = &serverData{Listen: v.HTTP.Listen, Names: aliases, Webroot: cfg.Webroot, To: httpTo}
	if v.HTTPS != nil {
		v.AliasHTTPS = &serverData{Listen: v.HTTPS.Listen, Names: aliases, Cert: v.HTTPS.Cert, Key: v.HTTPS.Key, HSTS: v.HTTPS.HSTS, To: httpsTo}
	}
}

// answersGuarded reports whether the domain's fixed answers must wait for
// the rate limit and access checks (see locationData.Guarded).
func answersGuarded(d *Domain) bool {
	return len(d.Allow) > 0 || len(d.Deny) > 0 || len(d.BasicAuthUsers) > 0 || d.RateLimit != nil
}

func (r *renderer) locations(d *Domain, proxySnippet []string) []locationData {
	if d.Maintenance {
		body := maintenanceBody
		if d.MaintenanceMessage != "" {
			body = d.MaintenanceMessage
		}
		// Guarded like fixed answers of routes, so a rate limit, allow/deny and
		// basic authentication still apply while the site is closed.
		return []locationData{{Path: "/", Status: 503, Body: body, ContentType: "text/plain", Guarded: answersGuarded(d)}}
	}
	locs := make([]locationData, 0, len(d.Routes)+1)
	hasRoot := false
	for i := range d.Routes {
		rt := &d.Routes[i]
		l := locationData{Exact: rt.Match == MatchExact, Path: rt.Path}
		if !l.Exact && rt.Path == "/" {
			hasRoot = true
		}
		switch rt.Kind {
		case RouteProxy:
			u := r.c.upByName[rt.Upstream]
			l.Proxy = true
			l.ProxyPass = "http://" + u.Name + rt.RewritePrefix
			l.PreserveHost = rt.PreserveHost
			l.WebSocket = rt.WebSocket
			l.ConnectTimeout, l.ReadTimeout, l.SendTimeout = u.ConnectTimeout, u.ReadTimeout, u.SendTimeout
			l.Snippet = proxySnippet
			if rt.CacheTTL > 0 {
				l.CacheTTL, l.CacheZone, l.CacheKey = rt.CacheTTL, cacheZone, cacheKey(d.CacheGeneration)
			}
		case RouteRedirect:
			l.Redirect = true
			l.Code, l.Target = rt.Code, rt.Target
		case RouteRespond:
			l.Status, l.Body, l.ContentType = rt.Status, rt.Body, rt.ContentType
		}
		locs = append(locs, l)
	}
	if !hasRoot {
		locs = append(locs, locationData{Path: "/", Status: 404, Body: "Not found.", ContentType: "text/plain"})
	}
	guarded := answersGuarded(d)
	// Sorted so that reordering routes in the UI does not change the release: nginx picks
	// the longest matching prefix and exact matches first, whatever their order in the file.
	slices.SortFunc(locs, func(a, b locationData) int {
		if c := cmp.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		switch {
		case a.Exact == b.Exact:
			return 0
		case a.Exact:
			return -1
		default:
			return 1
		}
	})
	for i := range locs {
		if guarded && !locs[i].Proxy {
			locs[i].Guarded, locs[i].Index = true, i
		}
	}
	return locs
}
