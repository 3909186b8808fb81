// Package nginxconf validates a node's reverse-proxy configuration and renders it into nginx
// configuration files.
//
// The package has no storage dependency: the controller fills a NodeConfig from its database,
// calls Render, and ships the resulting files to the node as one release. Every value that
// reaches a configuration file is checked against an allowlist first; Render refuses to
// produce anything for a configuration that does not validate.
package nginxconf

// Method is an upstream load-balancing method.
type Method string

// Load-balancing methods understood by the renderer.
const (
	MethodRoundRobin         Method = "round_robin"
	MethodLeastConn          Method = "least_conn"
	MethodIPHash             Method = "ip_hash"
	MethodHash               Method = "hash"
	MethodRandomTwoLeastConn Method = "random_two_least_conn"
)

// Target is one server of an upstream group.
type Target struct {
	Host        string // IP address or host name, without scheme or port
	Port        int    // 1..65535
	Weight      int    // 0 leaves nginx's default (1)
	MaxFails    int    // 0 leaves nginx's default (1)
	FailTimeout int    // seconds; 0 leaves nginx's default (10s)
	Backup      bool   // only used when the primary servers are unavailable
	Down        bool   // marked permanently unavailable
}

// Upstream is a named group of backend servers.
type Upstream struct {
	Name           string
	Targets        []Target
	Method         Method // empty means round robin
	HashKey        string // for MethodHash: one or more allowlisted nginx variables, e.g. "$request_uri"
	HashConsistent bool   // for MethodHash: ketama consistent hashing
	Keepalive      int    // idle keepalive connections cached per worker; 0 disables
	ConnectTimeout int    // seconds; 0 leaves nginx's default
	ReadTimeout    int    // seconds; 0 leaves nginx's default
	SendTimeout    int    // seconds; 0 leaves nginx's default
}

// MatchKind says how a route's path is compared with the request URI.
type MatchKind string

// Route match kinds.
const (
	MatchPrefix MatchKind = "prefix"
	MatchExact  MatchKind = "exact"
)

// RouteKind says what a route does with a matching request.
type RouteKind string

// Route kinds.
const (
	RouteProxy    RouteKind = "proxy"
	RouteRedirect RouteKind = "redirect"
	RouteRespond  RouteKind = "respond"
)

// Route maps a request path of a domain to an action.
type Route struct {
	Match MatchKind // empty means prefix
	Path  string
	Kind  RouteKind

	// Proxy.
	Upstream      string // name of an Upstream of the same NodeConfig
	WebSocket     bool   // pass Upgrade/Connection headers through
	PreserveHost  bool   // send the client's Host header instead of the upstream name
	RewritePrefix string // when set, the matched path is replaced by this one before proxying
	// CacheTTL, in seconds, keeps the upstream's 200, 301 and 308 answers in
	// the node's cache that long (the upstream's own Cache-Control or
	// Expires wins); 0 caches nothing. Requests that carry credentials skip
	// the cache, and answers that set cookies or say private or no-store are
	// never kept (nginx's rules).
	CacheTTL int

	// Redirect.
	Code   int    // 301, 302, 307 or 308
	Target string // absolute http(s) URL

	// Respond.
	Status      int    // 200..599
	Body        string // single line of printable text
	ContentType string // type/subtype, e.g. text/plain
}

// Header is one response header added to every response of a domain.
type Header struct {
	Name  string
	Value string
}

// BasicAuthUser is one user allowed through HTTP basic authentication. PasswordHash is a
// crypt(3) hash such as HashPassword produces; the plain password never reaches the renderer.
type BasicAuthUser struct {
	User         string
	PasswordHash string
}

// CertRef names a certificate and key already present on the node.
type CertRef struct {
	CertPath string // absolute path to the PEM certificate chain
	KeyPath  string // absolute path to the PEM private key
}

// Domain is one virtual host: a primary name, its aliases and what to do with requests.
type Domain struct {
	Name              string // primary name; Unicode accepted, rendered as punycode; "*.example.com" allowed
	Aliases           []string
	Routes            []Route
	ForceHTTPS        bool   // redirect plain HTTP to HTTPS (needs Certificate)
	HSTS              bool   // send Strict-Transport-Security (needs Certificate)
	HTTP2             bool   // offer HTTP/2 on the TLS listener (needs Certificate)
	ClientMaxBodySize string // nginx size such as "10m"; empty leaves nginx's default
	// Compress gzips text answers (HTML, CSS, JavaScript, JSON, XML, SVG,
	// fonts) for clients that accept it.
	Compress bool
	// CacheGeneration is part of the key of every answer the domain's routes
	// cache: a new generation misses everything kept before (a purge).
	CacheGeneration int
	ResponseHeaders []Header
	BasicAuthUsers  []BasicAuthUser
	Allow           []string // IPs or CIDRs allowed; when set everyone else is denied
	Deny            []string // IPs or CIDRs denied
	Maintenance     bool     // answer 503 to everything but ACME challenges
	// MaintenanceMessage is the text the 503 carries; empty means a
	// standard sentence.
	MaintenanceMessage string
	// RateLimit, when set, limits the requests each client address may make.
	RateLimit *RateLimit
	// RedirectAliases answers requests for the aliases with a 301 to the same
	// path on the primary name (which must not be a wildcard), instead of
	// serving them.
	RedirectAliases bool
	Certificate     *CertRef // when set, an HTTPS server is rendered
	Snippet         string   // admin-only extra directives, checked against an allowlist
}

// UnknownAnswer is what a node's nginx does with requests for names it does
// not serve.
type UnknownAnswer string

// Answers to unknown names. Over TLS both refuse the handshake: there is no
// certificate to answer with.
const (
	UnknownDefault  UnknownAnswer = ""          // nginx's default: the first server on the address
	UnknownClose    UnknownAnswer = "close"     // close the connection without an answer (444)
	UnknownNotFound UnknownAnswer = "not_found" // answer 404
)

// MaxCacheTTL is the longest a route may keep answers: 30 days.
const MaxCacheTTL = 30 * 24 * 3600

// RateLimit caps the requests per client address: Rate per second or per
// minute, with Burst more let through at once; beyond that nginx answers 429.
type RateLimit struct {
	Rate  int
	Unit  RateUnit // empty means per second
	Burst int
}

// RateUnit is the period a rate counts over.
type RateUnit string

// Rate units.
const (
	PerSecond RateUnit = "s"
	PerMinute RateUnit = "m"
)

// Limits of a rate limit.
const (
	MaxRate  = 100000
	MaxBurst = 100000
)

// Protocol is a stream's transport protocol.
type Protocol string

// Stream protocols.
const (
	ProtocolTCP Protocol = "tcp"
	ProtocolUDP Protocol = "udp"
)

// Stream forwards a TCP or UDP port to an upstream group.
type Stream struct {
	Name       string
	ListenPort int
	Protocol   Protocol // empty means tcp
	Upstream   string   // name of an Upstream of the same NodeConfig
}

// NodeConfig is everything rendered for one node.
type NodeConfig struct {
	Upstreams []Upstream
	Domains   []Domain
	Streams   []Stream

	// Webroot is the absolute directory the agent serves ACME HTTP-01 challenges from; a
	// challenge token is read from <Webroot>/.well-known/acme-challenge/<token>.
	Webroot string
	// ConfigDir is the absolute directory at which nginx reaches the rendered release (the
	// agent's "current" link); files that directives name, such as htpasswd files, are
	// addressed below it. Empty means DefaultConfigDir.
	ConfigDir string
	// UnknownNames is how nginx answers requests for names none of the
	// node's domains serves; empty leaves nginx's default (the first server
	// on each address answers them).
	UnknownNames UnknownAnswer
	// Status renders the block the node's agent reads nginx's counters from
	// (see package nginxstatus); set it only for an nginx with the
	// stub_status module, which its agent reports.
	Status bool
	// CacheMaxSize bounds the disk the cache may use, as an nginx size with
	// a unit ("500m", "10g"); empty means 1g.
	CacheMaxSize string
	// CacheDir is the absolute directory nginx keeps cached answers in, for
	// routes with a CacheTTL; nginx creates it (owned by its worker user)
	// when its parent exists. Empty means "cache" beside ConfigDir.
	CacheDir string
	// BindAddress restricts HTTP(S) listeners to one IP address; empty listens on all IPv4
	// and IPv6 addresses.
	BindAddress string
	// HTTPPort and HTTPSPort default to 80 and 443.
	HTTPPort  int
	HTTPSPort int
	// RealIP, when set, takes each request's client address from a header
	// the trusted proxies in front of nginx (a load balancer, a CDN) set,
	// so that allow/deny lists, rate limits and logs see the real client.
	RealIP *RealIP
}

// RealIP names the proxies nginx trusts and the header they carry the client
// address in.
type RealIP struct {
	// From are the proxies' addresses or CIDR prefixes.
	From []string
	// Header is one of RealIPHeaders; empty means X-Forwarded-For.
	Header string
}

// RealIPHeaders are the headers a client address may be taken from.
var RealIPHeaders = []string{"X-Forwarded-For", "X-Real-IP", "CF-Connecting-IP", "True-Client-IP", "Fastly-Client-IP"}

// MaxRealIPFrom bounds the trusted proxies of one node.
const MaxRealIPFrom = 64

// DefaultConfigDir is where the agent exposes the current release to nginx.
const DefaultConfigDir = "/etc/nginx/gatehouse/current"
