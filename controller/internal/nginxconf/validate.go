package nginxconf

import (
	"fmt"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// FieldErrors maps a field path such as "domains[0].routes[1].path" to a message a person
// can act on. A nil or empty FieldErrors means the configuration is valid.
type FieldErrors map[string]string

// Error lists every field and its message, sorted by field path.
func (fe FieldErrors) Error() string {
	keys := make([]string, 0, len(fe))
	for k := range fe {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString("invalid nginx configuration: ")
	for i, k := range keys {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(k)
		b.WriteString(": ")
		b.WriteString(fe[k])
	}
	return b.String()
}

func (fe FieldErrors) add(path, msg string) {
	if _, ok := fe[path]; !ok {
		fe[path] = msg
	}
}

// Limits on list lengths; they keep a single node's configuration within what nginx and the
// UI handle comfortably.
const (
	maxTargets     = 256
	maxAliases     = 100
	maxRoutes      = 200
	maxHeaders     = 50
	maxUsers       = 100
	maxACL         = 1000
	maxPathLen     = 1024
	maxBodyLen     = 4096
	maxHeaderValue = 1024
	maxTimeout     = 86400
)

var (
	reObjectName  = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	reHeaderName  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,63}$`)
	reUser        = regexp.MustCompile(`^[A-Za-z0-9._@+-]{1,64}$`)
	reBodySize    = regexp.MustCompile(`^[0-9]{1,6}[kKmMgG]?$`)
	reContentType = regexp.MustCompile(`^[a-z0-9][a-z0-9.+-]{0,63}/[a-z0-9][a-z0-9.+-]{0,63}$`)
	reHashVar     = regexp.MustCompile(`^\$[a-z0-9_]+`)
	reCryptHash   = regexp.MustCompile(`^(\$6\$(rounds=[0-9]{4,9}\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}|\$2[aby]\$[0-9]{2}\$[./0-9A-Za-z]{53})$`)
)

const (
	pathChars    = "letters, digits and . _ ~ - / + , = @ : !"
	pathMsg      = `must start with "/" and contain only ` + pathChars
	absPathMsg   = `must be an absolute path made of letters, digits and . _ - / without ".." segments`
	objectMsg    = "must be 1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit"
	acmePrefix   = "/.well-known/acme-challenge/"
	acmeReserved = "is reserved for ACME challenges served by Gatehouse"
)

// httpHashVars and streamHashVars allowlist the variables a hash key may combine.
var (
	httpHashVars   = setOf("request_uri", "uri", "args", "host", "http_host", "remote_addr", "binary_remote_addr", "scheme", "server_name", "remote_port", "server_addr", "server_port")
	httpHashPrefix = []string{"cookie_", "arg_", "http_"}
	streamHashVars = setOf("remote_addr", "binary_remote_addr", "remote_port", "server_addr", "server_port")
)

// checked is a normalized configuration ready to render.
type checked struct {
	cfg      NodeConfig
	snippets []parsedSnippet // per domain
	upByName map[string]*Upstream
}

// Validate checks every field of cfg against its allowlist.
func Validate(cfg NodeConfig) FieldErrors {
	_, fe := check(cfg)
	return fe
}

// Normalize validates cfg and returns a copy with defaults filled in and names in canonical
// form: domain and host names lowercase punycode, addresses and prefixes canonical. Store the
// normalized values so that what an admin sees is what nginx gets.
func Normalize(cfg NodeConfig) (NodeConfig, FieldErrors) {
	c, fe := check(cfg)
	if fe != nil {
		return NodeConfig{}, fe
	}
	return c.cfg, nil
}

func check(in NodeConfig) (*checked, FieldErrors) {
	fe := FieldErrors{}
	c := &checked{cfg: NodeConfig{
		Webroot:      in.Webroot,
		ConfigDir:    in.ConfigDir,
		BindAddress:  in.BindAddress,
		HTTPPort:     in.HTTPPort,
		HTTPSPort:    in.HTTPSPort,
		CacheDir:     in.CacheDir,
		Status:       in.Status,
		UnknownNames: in.UnknownNames,
		CacheMaxSize: in.CacheMaxSize,
	}}
	out := &c.cfg
	if out.Webroot == "" {
		fe.add("webroot", "must be set to the directory ACME challenges are served from")
	} else if !validAbsPath(out.Webroot) {
		fe.add("webroot", absPathMsg)
	}
	if out.ConfigDir == "" {
		out.ConfigDir = DefaultConfigDir
	} else if !validAbsPath(out.ConfigDir) {
		fe.add("config_dir", absPathMsg)
	}
	if out.CacheDir == "" {
		out.CacheDir = path.Join(path.Dir(out.ConfigDir), "cache")
	} else if !validAbsPath(out.CacheDir) || out.CacheDir == "/" {
		fe.add("cache_dir", absPathMsg)
	}
	if out.CacheMaxSize == "" {
		out.CacheMaxSize = DefaultCacheMaxSize
	} else if msg := CacheSizeProblem(out.CacheMaxSize); msg != "" {
		fe.add("cache_max_size", msg)
	} else {
		out.CacheMaxSize = strings.ToLower(out.CacheMaxSize)
	}
	switch out.UnknownNames {
	case UnknownDefault, UnknownClose, UnknownNotFound:
	default:
		fe.add("unknown_names", `must be "close", "not_found" or empty (nginx's default)`)
	}
	if out.BindAddress != "" {
		a, err := netip.ParseAddr(out.BindAddress)
		if err != nil || a.Zone() != "" {
			fe.add("bind_address", "must be an IP address such as 192.0.2.10 or 2001:db8::10, or empty for all addresses")
		} else {
			out.BindAddress = a.String()
		}
	}
	if out.HTTPPort == 0 {
		out.HTTPPort = 80
	}
	if out.HTTPSPort == 0 {
		out.HTTPSPort = 443
	}
	checkPort(fe, "http_port", out.HTTPPort)
	checkPort(fe, "https_port", out.HTTPSPort)
	if in.RealIP != nil {
		out.RealIP = checkRealIP(fe, *in.RealIP)
	}
	if out.HTTPPort == out.HTTPSPort {
		fe.add("https_port", "must differ from http_port")
	}

	c.upByName = make(map[string]*Upstream, len(in.Upstreams))
	out.Upstreams = make([]Upstream, len(in.Upstreams))
	for i, u := range in.Upstreams {
		p := fmt.Sprintf("upstreams[%d]", i)
		out.Upstreams[i] = checkUpstream(fe, p, u)
		if !reObjectName.MatchString(u.Name) {
			continue
		}
		if _, dup := c.upByName[u.Name]; dup {
			fe.add(p+".name", fmt.Sprintf("another upstream is already named %q", u.Name))
			continue
		}
		c.upByName[u.Name] = &out.Upstreams[i]
	}

	names := make(map[string]string) // server name -> field that claimed it
	out.Domains = make([]Domain, len(in.Domains))
	c.snippets = make([]parsedSnippet, len(in.Domains))
	for i, d := range in.Domains {
		p := fmt.Sprintf("domains[%d]", i)
		out.Domains[i], c.snippets[i] = checkDomain(fe, p, d, c.upByName, names)
	}

	out.Streams = make([]Stream, len(in.Streams))
	streamNames := make(map[string]bool)
	listeners := make(map[string]string)
	for i, s := range in.Streams {
		p := fmt.Sprintf("streams[%d]", i)
		out.Streams[i] = checkStream(fe, p, s, c.upByName, *out, streamNames, listeners)
	}
	if len(fe) > 0 {
		return nil, fe
	}
	return c, nil
}

// DefaultCacheMaxSize is a node's cache size when none is set.
const DefaultCacheMaxSize = "1g"

var reCacheSize = regexp.MustCompile(`^[1-9][0-9]{0,6}[mMgG]$`)

// CacheSizeProblem says why s is not a cache size, or "" when it is one:
// a whole number of megabytes or gigabytes, from 10m to 10000g.
func CacheSizeProblem(s string) string {
	if mb, ok := cacheSizeMB(s); !ok || mb < 10 || mb > 10000*1024 {
		return `must be a size in megabytes or gigabytes such as "500m" or "10g", from 10m to 10000g`
	}
	return ""
}

// cacheSizeMB reads a size such as "500m" or "10g" in megabytes.
func cacheSizeMB(s string) (int, bool) {
	if !reCacheSize.MatchString(s) {
		return 0, false
	}
	mb, _ := strconv.Atoi(s[:len(s)-1])
	if unit := s[len(s)-1]; unit == 'g' || unit == 'G' {
		mb *= 1024
	}
	return mb, true
}

func checkPort(fe FieldErrors, path string, port int) {
	if port < 1 || port > 65535 {
		fe.add(path, "must be a port number between 1 and 65535")
	}
}

func checkRange(fe FieldErrors, path string, v, lo, hi int, unit string) {
	if v < lo || v > hi {
		fe.add(path, fmt.Sprintf("must be between %d and %d%s", lo, hi, unit))
	}
}

func validAbsPath(s string) bool {
	if len(s) < 1 || len(s) > maxPathLen || s[0] != '/' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == '/') {
			return false
		}
	}
	for seg := range strings.SplitSeq(s[1:], "/") {
		if seg == "." || seg == ".." || (seg == "" && s != "/") {
			return false
		}
	}
	return true
}

func validURLPath(s string) bool {
	if len(s) < 1 || len(s) > maxPathLen || s[0] != '/' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._~-/+,=@:!", c) >= 0) {
			return false
		}
	}
	return true
}

// quotedTextProblem reports why s cannot be rendered inside a double-quoted nginx string:
// quotes and backslashes would end or escape it, "$" would expand a variable, and control
// bytes have no place in a configuration line.
func quotedTextProblem(s string, max int) string {
	if len(s) > max {
		return fmt.Sprintf("must be at most %d bytes long", max)
	}
	for _, r := range s {
		switch {
		case r == '"' || r == '\'':
			return "must not contain quotes"
		case r == '\\':
			return "must not contain backslashes"
		case r == '$':
			return `must not contain "$"`
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0xfffd:
			return "must not contain control characters, newlines or invalid UTF-8"
		}
	}
	return ""
}

func checkUpstream(fe FieldErrors, p string, u Upstream) Upstream {
	out := u
	if !reObjectName.MatchString(u.Name) {
		fe.add(p+".name", objectMsg)
	}
	if out.Method == "" {
		out.Method = MethodRoundRobin
	}
	switch out.Method {
	case MethodRoundRobin, MethodLeastConn, MethodIPHash, MethodRandomTwoLeastConn:
		if u.HashKey != "" {
			fe.add(p+".hash_key", `is only used with the "hash" method`)
		}
		if u.HashConsistent {
			fe.add(p+".hash_consistent", `is only used with the "hash" method`)
		}
	case MethodHash:
		if msg := hashKeyProblem(u.HashKey, false); msg != "" {
			fe.add(p+".hash_key", msg)
		}
	default:
		fe.add(p+".method", "must be one of round_robin, least_conn, ip_hash, hash, random_two_least_conn")
	}
	checkRange(fe, p+".keepalive", u.Keepalive, 0, 10000, "")
	checkRange(fe, p+".connect_timeout", u.ConnectTimeout, 0, 3600, " seconds")
	checkRange(fe, p+".read_timeout", u.ReadTimeout, 0, maxTimeout, " seconds")
	checkRange(fe, p+".send_timeout", u.SendTimeout, 0, maxTimeout, " seconds")
	if len(u.Targets) == 0 {
		fe.add(p+".targets", "must list at least one server")
	}
	if len(u.Targets) > maxTargets {
		fe.add(p+".targets", fmt.Sprintf("must list at most %d servers", maxTargets))
		return out
	}
	out.Targets = make([]Target, len(u.Targets))
	primaries := 0
	for j, t := range u.Targets {
		tp := fmt.Sprintf("%s.targets[%d]", p, j)
		nt := t
		host := t.Host
		if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
			host = host[1 : len(host)-1]
		}
		if a, err := netip.ParseAddr(host); err == nil {
			if a.Zone() != "" {
				fe.add(tp+".host", "must not carry an IPv6 zone")
			}
			nt.Host = a.String()
		} else if h, err := normalizeHostname(t.Host); err != nil {
			fe.add(tp+".host", "must be an IP address or host name: "+err.Error())
		} else {
			nt.Host = h
		}
		checkPort(fe, tp+".port", t.Port)
		checkRange(fe, tp+".weight", t.Weight, 0, 1000, "")
		checkRange(fe, tp+".max_fails", t.MaxFails, 0, 1000, "")
		checkRange(fe, tp+".fail_timeout", t.FailTimeout, 0, maxTimeout, " seconds")
		if t.Backup {
			switch out.Method {
			case MethodHash, MethodIPHash, MethodRandomTwoLeastConn:
				fe.add(tp+".backup", fmt.Sprintf("cannot be used with the %s method (nginx refuses it)", out.Method))
			}
			if t.Down {
				fe.add(tp+".down", "a backup server cannot also be marked down")
			}
		} else {
			primaries++
		}
		out.Targets[j] = nt
	}
	if len(u.Targets) > 0 && primaries == 0 {
		fe.add(p+".targets", "must include at least one server that is not a backup")
	}
	return out
}

// hashKeyProblem checks that key concatenates only allowlisted variables.
func hashKeyProblem(key string, stream bool) string {
	if key == "" {
		return `must name the variables to hash, such as "$request_uri" or "$remote_addr"`
	}
	if len(key) > 256 {
		return "must be at most 256 bytes long"
	}
	rest := key
	for rest != "" {
		v := reHashVar.FindString(rest)
		if v == "" {
			return `must be one or more variables such as "$request_uri$args"; nothing else is allowed`
		}
		name := v[1:]
		if stream {
			if !streamHashVars[name] {
				return fmt.Sprintf("variable %q is not available to streams; use $remote_addr, $binary_remote_addr, $remote_port, $server_addr or $server_port", v)
			}
		} else if !httpHashVars[name] && !hasAllowedPrefix(name) {
			return fmt.Sprintf("variable %q is not allowed; use $request_uri, $uri, $args, $host, $remote_addr, $binary_remote_addr, $cookie_NAME, $arg_NAME or $http_NAME", v)
		}
		rest = rest[len(v):]
	}
	return ""
}

func hasAllowedPrefix(name string) bool {
	for _, p := range httpHashPrefix {
		if strings.HasPrefix(name, p) && len(name) > len(p) {
			return true
		}
	}
	return false
}

// NormalizeRealIP checks a node's trusted proxies and header on their own
// (for a settings form), returning them in the form rendered, or messages
// keyed "from", "from[i]" and "header".
func NormalizeRealIP(in RealIP) (RealIP, FieldErrors) {
	fe := FieldErrors{}
	out := checkRealIP(fe, in)
	if len(fe) > 0 {
		keyed := FieldErrors{}
		for k, v := range fe {
			keyed[strings.TrimPrefix(k, "real_ip.")] = v
		}
		return RealIP{}, keyed
	}
	return *out, nil
}

// checkRealIP normalises the trusted proxies (canonical, sorted, without
// repeats) and the header (its usual spelling).
func checkRealIP(fe FieldErrors, in RealIP) *RealIP {
	out := &RealIP{Header: "X-Forwarded-For"}
	if in.Header != "" {
		i := slices.IndexFunc(RealIPHeaders, func(h string) bool { return strings.EqualFold(h, in.Header) })
		if i < 0 {
			fe.add("real_ip.header", "must be one of "+strings.Join(RealIPHeaders, ", "))
		} else {
			out.Header = RealIPHeaders[i]
		}
	}
	switch {
	case len(in.From) == 0:
		fe.add("real_ip.from", "list the addresses or networks of the proxies in front of nginx")
	case len(in.From) > MaxRealIPFrom:
		fe.add("real_ip.from", fmt.Sprintf("must list at most %d addresses or networks", MaxRealIPFrom))
	}
	for i, f := range in.From {
		n, err := normalizeAddrOrCIDR(strings.TrimSpace(f))
		if err != nil {
			fe.add(fmt.Sprintf("real_ip.from[%d]", i), err.Error())
			continue
		}
		if !slices.Contains(out.From, n) {
			out.From = append(out.From, n)
		}
	}
	slices.Sort(out.From)
	return out
}

func claimName(fe FieldErrors, path, name string, names map[string]string) {
	if prev, ok := names[name]; ok {
		fe.add(path, fmt.Sprintf("%q is already used by %s", name, prev))
		return
	}
	names[name] = path
}

func checkDomain(fe FieldErrors, p string, d Domain, ups map[string]*Upstream, names map[string]string) (Domain, parsedSnippet) {
	out := d
	if n, err := NormalizeDomainName(d.Name); err != nil {
		fe.add(p+".name", err.Error())
	} else {
		out.Name = n
		claimName(fe, p+".name", n, names)
	}
	if len(d.Aliases) > maxAliases {
		fe.add(p+".aliases", fmt.Sprintf("must list at most %d names", maxAliases))
	} else {
		out.Aliases = make([]string, len(d.Aliases))
		for j, a := range d.Aliases {
			ap := fmt.Sprintf("%s.aliases[%d]", p, j)
			n, err := NormalizeDomainName(a)
			if err != nil {
				fe.add(ap, err.Error())
				continue
			}
			out.Aliases[j] = n
			claimName(fe, ap, n, names)
		}
		slices.Sort(out.Aliases)
	}

	hasCert := d.Certificate != nil
	if d.Certificate != nil {
		if !validAbsPath(d.Certificate.CertPath) {
			fe.add(p+".certificate.cert_path", absPathMsg)
		}
		if !validAbsPath(d.Certificate.KeyPath) {
			fe.add(p+".certificate.key_path", absPathMsg)
		}
		cr := *d.Certificate
		out.Certificate = &cr
	}
	if rl := d.RateLimit; rl != nil {
		r := *rl
		if r.Unit == "" {
			r.Unit = PerSecond
		}
		if r.Rate < 1 || r.Rate > MaxRate {
			fe.add(p+".rate_limit", fmt.Sprintf("must be a whole number of requests from 1 to %d", MaxRate))
		}
		if r.Unit != PerSecond && r.Unit != PerMinute {
			fe.add(p+".rate_unit", `must be "s" (per second) or "m" (per minute)`)
		}
		if r.Burst < 0 || r.Burst > MaxBurst {
			fe.add(p+".rate_burst", fmt.Sprintf("must be a whole number from 0 to %d", MaxBurst))
		}
		out.RateLimit = &r
	}
	checkRange(fe, p+".cache_generation", d.CacheGeneration, 0, 1<<30, "")
	if msg := quotedTextProblem(d.MaintenanceMessage, maxBodyLen); msg != "" {
		fe.add(p+".maintenance_message", msg)
	}
	if d.RedirectAliases && strings.HasPrefix(d.Name, "*.") {
		fe.add(p+".redirect_aliases", "needs a primary name that is not a wildcard, to redirect the aliases to")
	}
	if d.ForceHTTPS && !hasCert {
		fe.add(p+".force_https", "needs a certificate; enable it once the certificate is issued")
	}
	if d.HSTS && !hasCert {
		fe.add(p+".hsts", "needs a certificate; enable it once the certificate is issued")
	}
	if d.HTTP2 && !hasCert {
		fe.add(p+".http2", "needs a certificate: browsers speak HTTP/2 only over TLS")
	}
	if d.ClientMaxBodySize != "" && !reBodySize.MatchString(d.ClientMaxBodySize) {
		fe.add(p+".client_max_body_size", `must be a size such as "512k", "10m" or "1g" (up to 6 digits, "0" for unlimited)`)
	}

	if len(d.ResponseHeaders) > maxHeaders {
		fe.add(p+".response_headers", fmt.Sprintf("must list at most %d headers", maxHeaders))
	}
	for j, h := range d.ResponseHeaders {
		hp := fmt.Sprintf("%s.response_headers[%d]", p, j)
		if !reHeaderName.MatchString(h.Name) {
			fe.add(hp+".name", "must be 1-64 letters, digits or '-', starting with a letter or digit")
		}
		if h.Value == "" {
			fe.add(hp+".value", "must not be empty")
		} else if msg := quotedTextProblem(h.Value, maxHeaderValue); msg != "" {
			fe.add(hp+".value", msg)
		} else if !isASCII(h.Value) {
			fe.add(hp+".value", "must be plain ASCII text")
		}
	}

	if len(d.BasicAuthUsers) > maxUsers {
		fe.add(p+".basic_auth_users", fmt.Sprintf("must list at most %d users", maxUsers))
	}
	users := make(map[string]bool)
	for j, u := range d.BasicAuthUsers {
		up := fmt.Sprintf("%s.basic_auth_users[%d]", p, j)
		if !reUser.MatchString(u.User) {
			fe.add(up+".user", "must be 1-64 letters, digits or . _ @ + -")
		} else if users[u.User] {
			fe.add(up+".user", fmt.Sprintf("user %q is listed twice", u.User))
		}
		users[u.User] = true
		if !reCryptHash.MatchString(u.PasswordHash) {
			fe.add(up+".password_hash", "must be a SHA-512 ($6$) or bcrypt ($2a$, $2b$ or $2y$) crypt hash; set the password to compute one")
		}
	}

	out.Allow = checkACL(fe, p+".allow", d.Allow)
	out.Deny = checkACL(fe, p+".deny", d.Deny)

	var snip parsedSnippet
	if d.Snippet != "" {
		var msgs []string
		snip, msgs = checkSnippet(d.Snippet)
		if d.Compress {
			for _, s := range snip.server {
				if strings.HasPrefix(s.name, "gzip") {
					msgs = append(msgs, fmt.Sprintf("%q would repeat what compression sets; turn compression off to tune gzip here", s.name))
					break
				}
			}
		}
		if len(msgs) > 0 {
			fe.add(p+".snippet", strings.Join(msgs, "; "))
		}
	}

	if len(d.Routes) > maxRoutes {
		fe.add(p+".routes", fmt.Sprintf("must list at most %d routes", maxRoutes))
		return out, snip
	}
	out.Routes = make([]Route, len(d.Routes))
	seen := make(map[string]int)
	for j, r := range d.Routes {
		rp := fmt.Sprintf("%s.routes[%d]", p, j)
		out.Routes[j] = checkRoute(fe, rp, r, ups)
		key := string(out.Routes[j].Match) + " " + r.Path
		if prev, dup := seen[key]; dup {
			fe.add(rp+".path", fmt.Sprintf("routes[%d] already matches %s %q", prev, out.Routes[j].Match, r.Path))
		} else {
			seen[key] = j
		}
	}
	return out, snip
}

func checkACL(fe FieldErrors, p string, list []string) []string {
	if len(list) > maxACL {
		fe.add(p, fmt.Sprintf("must list at most %d entries", maxACL))
		return nil
	}
	if list == nil {
		return nil
	}
	out := make([]string, len(list))
	for j, s := range list {
		n, err := normalizeAddrOrCIDR(s)
		if err != nil {
			fe.add(fmt.Sprintf("%s[%d]", p, j), err.Error())
			continue
		}
		out[j] = n
	}
	slices.Sort(out)
	return out
}

func checkRoute(fe FieldErrors, p string, r Route, ups map[string]*Upstream) Route {
	out := r
	if out.Match == "" {
		out.Match = MatchPrefix
	}
	if out.Match != MatchPrefix && out.Match != MatchExact {
		fe.add(p+".match", `must be "prefix" or "exact"`)
	}
	switch {
	case !validURLPath(r.Path):
		fe.add(p+".path", pathMsg)
	case strings.HasPrefix(r.Path+"/", acmePrefix) || strings.HasPrefix(r.Path, acmePrefix):
		fe.add(p+".path", acmeReserved)
	}
	switch r.Kind {
	case RouteProxy:
		if r.Upstream == "" {
			fe.add(p+".upstream", "must name the upstream to proxy to")
		} else if _, ok := ups[r.Upstream]; !ok {
			fe.add(p+".upstream", fmt.Sprintf("no upstream is named %q", r.Upstream))
		}
		if r.RewritePrefix != "" && !validURLPath(r.RewritePrefix) {
			fe.add(p+".rewrite_prefix", pathMsg)
		}
		checkRange(fe, p+".cache_ttl", r.CacheTTL, 0, MaxCacheTTL, " seconds (30 days)")
	case RouteRedirect:
		out.CacheTTL = 0 // only proxied answers are cached
		switch r.Code {
		case 301, 302, 307, 308:
		default:
			fe.add(p+".code", "must be 301, 302, 307 or 308")
		}
		if t, msg := checkRedirectTarget(r.Target); msg != "" {
			fe.add(p+".target", msg)
		} else {
			out.Target = t
		}
	case RouteRespond:
		out.CacheTTL = 0 // only proxied answers are cached
		if r.Status < 200 || r.Status > 599 || (r.Status >= 300 && r.Status < 400) {
			fe.add(p+".status", "must be between 200 and 599, outside 300-399 (use a redirect route for those)")
		}
		if msg := quotedTextProblem(r.Body, maxBodyLen); msg != "" {
			fe.add(p+".body", msg)
		}
		if out.ContentType == "" {
			out.ContentType = "text/plain"
		} else if !reContentType.MatchString(r.ContentType) {
			fe.add(p+".content_type", `must be a media type such as "text/plain" or "application/json", without parameters`)
		}
	default:
		fe.add(p+".kind", `must be "proxy", "redirect" or "respond"`)
	}
	return out
}

// checkRedirectTarget accepts an absolute http or https URL whose host is a valid name or IP
// and whose remaining bytes are all URL characters that are inert inside a quoted nginx
// string. It returns the URL with its host in punycode.
func checkRedirectTarget(s string) (string, string) {
	const msg = "must be an absolute http:// or https:// URL"
	if s == "" {
		return "", msg
	}
	if len(s) > 2048 {
		return "", "must be at most 2048 bytes long"
	}
	if p := quotedTextProblem(s, 2048); p != "" {
		return "", p
	}
	for _, r := range s {
		if r == ' ' || r == '{' || r == '}' || r == '<' || r == '>' || r == '`' || r == '^' || r == '|' {
			return "", "must not contain spaces or the characters { } < > ` ^ |"
		}
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Opaque != "" || u.User != nil || u.Host == "" {
		return "", msg + " without user information"
	}
	host := u.Hostname()
	var norm string
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return "", "must not carry an IPv6 zone"
		}
		norm = a.String()
		if a.Is6() {
			norm = "[" + norm + "]"
		}
	} else {
		h, err := normalizeHostname(host)
		if err != nil {
			return "", "host " + err.Error()
		}
		norm = h
	}
	if port := u.Port(); port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return "", "port must be between 1 and 65535"
		}
		norm += ":" + strconv.Itoa(n)
	}
	rest := s[len(u.Scheme)+3:]
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[i:]
	} else {
		rest = ""
	}
	if !isASCII(rest) {
		return "", "path and query must be percent-encoded ASCII"
	}
	return u.Scheme + "://" + norm + rest, ""
}

func checkStream(fe FieldErrors, p string, s Stream, ups map[string]*Upstream, node NodeConfig, names map[string]bool, listeners map[string]string) Stream {
	out := s
	if !reObjectName.MatchString(s.Name) {
		fe.add(p+".name", objectMsg)
	} else if names[s.Name] {
		fe.add(p+".name", fmt.Sprintf("another stream is already named %q", s.Name))
	} else {
		names[s.Name] = true
	}
	if out.Protocol == "" {
		out.Protocol = ProtocolTCP
	}
	if out.Protocol != ProtocolTCP && out.Protocol != ProtocolUDP {
		fe.add(p+".protocol", `must be "tcp" or "udp"`)
	}
	checkPort(fe, p+".listen_port", s.ListenPort)
	if out.Protocol == ProtocolTCP && (s.ListenPort == node.HTTPPort || s.ListenPort == node.HTTPSPort) {
		fe.add(p+".listen_port", fmt.Sprintf("port %d/tcp is used by the HTTP(S) servers", s.ListenPort))
	}
	key := fmt.Sprintf("%d/%s", s.ListenPort, out.Protocol)
	if prev, dup := listeners[key]; dup {
		fe.add(p+".listen_port", fmt.Sprintf("port %s is already used by %s", key, prev))
	} else {
		listeners[key] = p
	}
	u, ok := ups[s.Upstream]
	switch {
	case s.Upstream == "":
		fe.add(p+".upstream", "must name the upstream to forward to")
	case !ok:
		fe.add(p+".upstream", fmt.Sprintf("no upstream is named %q", s.Upstream))
	case u.Method == MethodIPHash:
		fe.add(p+".upstream", fmt.Sprintf("upstream %q uses ip_hash, which streams do not support; use hash with $remote_addr", s.Upstream))
	case u.Method == MethodHash:
		if msg := hashKeyProblem(u.HashKey, true); msg != "" {
			fe.add(p+".upstream", fmt.Sprintf("upstream %q hash key: %s", s.Upstream, msg))
		}
	}
	return out
}
