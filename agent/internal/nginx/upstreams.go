package nginx

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/gatehousehq/gatehouse/internal/nginxsyntax"
)

// Bounds on what ReadUpstreams takes from a release. Its files may have been
// edited behind the agent's back, so they are read as untrusted input:
// anything past these bounds is left out and said so in Upstreams.Ignored.
const (
	// MaxUpstreamFileSize is the largest file parsed.
	MaxUpstreamFileSize = 1 << 20
	// MaxUpstreamFiles is how many .conf files are parsed, http/ and
	// stream/ together.
	MaxUpstreamFiles = 2000
	// MaxUpstreamAddresses is how many distinct server addresses are kept.
	MaxUpstreamAddresses = 512
	// MaxUpstreamServers is how many (upstream, address) pairs are kept.
	MaxUpstreamServers = 2048
	// maxUpstreamName bounds an upstream block's name.
	maxUpstreamName = 255
	// maxIgnored bounds the notes in Upstreams.Ignored.
	maxIgnored = 32
	// maxDirEntries bounds how many entries of http/ or stream/ are looked
	// at while searching for .conf files.
	maxDirEntries = 10 * MaxUpstreamFiles
)

// Release subdirectories whose files hold upstream blocks, as the controller
// renders them; nginx includes each with <current>/<dir>/*.conf.
const (
	httpDir   = "http"
	streamDir = "stream"
)

// UpstreamServer is one server of one upstream block.
type UpstreamServer struct {
	// Upstream is the block's name, unquoted.
	Upstream string
	// Address is host:port as the file has it ([v6]:port for IPv6).
	Address string
}

// Upstreams are the upstream servers of the current release.
type Upstreams struct {
	// Revision is the current release; zero when none is applied.
	Revision uint64
	// Servers are the servers not marked down, each (upstream, address)
	// pair once, in file order with files sorted by path.
	Servers []UpstreamServer
	// Ignored says what was left out and why: files that are not regular
	// files, too large or too many, lines whose address is not host:port,
	// and servers past the bounds. At most maxIgnored notes, the last
	// saying how many more there were.
	Ignored []string
}

// Addresses returns the distinct addresses of u.Servers in first-seen order.
func (u Upstreams) Addresses() []string {
	seen := make(map[string]bool, len(u.Servers))
	var out []string
	for _, s := range u.Servers {
		if !seen[s.Address] {
			seen[s.Address] = true
			out = append(out, s.Address)
		}
	}
	return out
}

// ReadUpstreams reads the upstream blocks of the release `current` points to
// under the managed directory dir: every *.conf file directly in its http/
// and stream/ directories. It needs no Applier and creates nothing; a
// missing managed directory or `current` means no release (Revision 0).
// It never follows a symlink below dir: a symlinked release, directory or
// file is not read. Servers marked down are left out, and so are the
// upstreams of stream servers that listen only on UDP, which a TCP probe
// cannot speak for. Errors are returned only when the current release
// cannot be opened; what is wrong inside its files is noted in Ignored.
func ReadUpstreams(dir string) (Upstreams, error) {
	root, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return Upstreams{}, nil
	}
	if err != nil {
		return Upstreams{}, fmt.Errorf("open managed dir %s: %w", dir, err)
	}
	defer unix.Close(root)
	rev, ok, err := readCurrent(root)
	if err != nil || !ok {
		return Upstreams{}, err
	}
	rel, err := openDirAt(root, releaseTarget(rev))
	if err != nil {
		return Upstreams{}, fmt.Errorf("open current release %d: %w", rev, err)
	}
	defer unix.Close(rel)

	c := newUpstreamCollector()
	var files []releaseConf
	for _, sub := range []string{httpDir, streamDir} {
		names, err := confFiles(rel, sub, MaxUpstreamFiles-len(files), c.ignore)
		if err != nil {
			c.ignore(fmt.Sprintf("%s/: %v", sub, err))
			continue
		}
		for _, n := range names {
			files = append(files, releaseConf{dir: sub, name: n})
		}
	}
	var streams []parsedConf
	for _, f := range files {
		p := f.dir + "/" + f.name
		src, err := readConf(rel, f.dir, f.name)
		if err != nil {
			c.ignore(fmt.Sprintf("%s: %v", p, err))
			continue
		}
		pc := parseUpstreamConf(src)
		pc.path = p
		for _, msg := range pc.problems {
			c.ignore(p + ": " + msg)
		}
		if f.dir == streamDir {
			streams = append(streams, pc)
			continue
		}
		c.addBlocks(p, pc.upstreams, nil)
	}
	// Stream files come after http/ ones, so deciding which stream
	// upstreams only UDP reaches, across all stream files, keeps the order.
	udp := udpOnlyUpstreams(streams)
	for _, pc := range streams {
		c.addBlocks(pc.path, pc.upstreams, udp)
	}
	return Upstreams{Revision: rev, Servers: c.servers, Ignored: c.notes()}, nil
}

type releaseConf struct{ dir, name string }

// confFiles lists the names of the *.conf entries directly in sub, sorted,
// at most limit of them. A missing sub is no files; a symlink in its place
// is an error (it is not followed).
func confFiles(rel int, sub string, limit int, ignore func(string)) ([]string, error) {
	fd, err := unix.Openat(rel, sub, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		return nil, errors.New("not a directory (a symlink is not followed)")
	}
	if err != nil {
		return nil, err
	}
	d := os.NewFile(uintptr(fd), sub)
	defer d.Close()
	var names []string
	seen := 0
	for {
		entries, err := d.ReadDir(256)
		for _, e := range entries {
			seen++
			n := e.Name()
			// nginx's *.conf glob does not match names starting with a dot.
			if strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".conf") {
				continue
			}
			names = append(names, n)
		}
		if errors.Is(err, io.EOF) || len(entries) == 0 {
			break
		}
		if err != nil {
			return nil, err
		}
		if seen >= maxDirEntries {
			ignore(fmt.Sprintf("%s/: more than %d entries; only the first were looked at", sub, maxDirEntries))
			break
		}
	}
	sort.Strings(names)
	if len(names) > limit {
		ignore(fmt.Sprintf("%s/: %d .conf files past the first %d were not read", sub, len(names)-limit, MaxUpstreamFiles))
		names = names[:max(limit, 0)]
	}
	return names, nil
}

// readConf reads one regular file of at most MaxUpstreamFileSize bytes
// without following a symlink or blocking on a FIFO.
func readConf(rel int, sub, name string) ([]byte, error) {
	dir, err := unix.Openat(rel, sub, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dir)
	fd, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ELOOP) {
		return nil, errors.New("a symlink, not followed")
	}
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, errors.New("not a regular file")
	}
	if st.Size > MaxUpstreamFileSize {
		return nil, fmt.Errorf("%d bytes, larger than the %d read", st.Size, MaxUpstreamFileSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxUpstreamFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxUpstreamFileSize {
		return nil, fmt.Errorf("grew past %d bytes while read", MaxUpstreamFileSize)
	}
	return data, nil
}

// upstreamCollector gathers unique servers within the bounds.
type upstreamCollector struct {
	servers []UpstreamServer
	pairs   map[UpstreamServer]bool
	addrs   map[string]bool
	ignored []string
	dropped int
}

func newUpstreamCollector() *upstreamCollector {
	return &upstreamCollector{pairs: map[UpstreamServer]bool{}, addrs: map[string]bool{}}
}

func (c *upstreamCollector) ignore(msg string) {
	if len(c.ignored) < maxIgnored-1 {
		c.ignored = append(c.ignored, msg)
		return
	}
	c.dropped++
}

func (c *upstreamCollector) notes() []string {
	if c.dropped == 0 {
		return c.ignored
	}
	return append(c.ignored, fmt.Sprintf("and %d more", c.dropped))
}

// addBlocks adds the servers of blocks, except those of upstreams in skip.
func (c *upstreamCollector) addBlocks(where string, blocks []upstreamBlock, skip map[string]bool) {
	for _, b := range blocks {
		if skip[b.name] {
			continue
		}
		for _, addr := range b.servers {
			s := UpstreamServer{Upstream: b.name, Address: addr}
			if c.pairs[s] {
				continue
			}
			if !c.addrs[addr] && len(c.addrs) >= MaxUpstreamAddresses {
				c.ignore(fmt.Sprintf("%s: upstream %q: server %s: past %d distinct addresses", where, b.name, addr, MaxUpstreamAddresses))
				continue
			}
			if len(c.servers) >= MaxUpstreamServers {
				c.ignore(fmt.Sprintf("%s: upstream %q: server %s: past %d servers", where, b.name, addr, MaxUpstreamServers))
				continue
			}
			c.pairs[s] = true
			c.addrs[addr] = true
			c.servers = append(c.servers, s)
		}
	}
}

// udpOnlyUpstreams names the stream upstreams that only UDP servers pass to:
// every top-level server block whose proxy_pass names it listens on UDP
// alone. An upstream no server passes to is probed.
func udpOnlyUpstreams(files []parsedConf) map[string]bool {
	tcp := map[string]bool{}
	udp := map[string]bool{}
	for _, f := range files {
		for _, p := range f.proxies {
			if p.udpOnly {
				udp[p.upstream] = true
			} else {
				tcp[p.upstream] = true
			}
		}
	}
	for name := range tcp {
		delete(udp, name)
	}
	return udp
}

// upstreamBlock is one top-level upstream block and its usable servers.
type upstreamBlock struct {
	name    string
	servers []string
}

// streamProxy is one top-level server block: the upstream it passes to and
// whether all its listen directives are UDP.
type streamProxy struct {
	upstream string
	udpOnly  bool
}

// parsedConf is what one file holds.
type parsedConf struct {
	path      string
	upstreams []upstreamBlock
	proxies   []streamProxy
	problems  []string
}

// parseUpstreamConf finds the top-level `upstream NAME { ... }` blocks of
// one file and their `server ADDRESS [params];` lines, and the top-level
// `server { ... }` blocks' listen and proxy_pass (used for stream files).
// Servers with the down parameter are left out. Everything else is skipped;
// an address that is not host:port, a name that is not printable text and
// a syntax error are noted in problems. After a syntax error the blocks
// completed before it are kept.
func parseUpstreamConf(src []byte) parsedConf {
	var out parsedConf
	toks, lines, err := nginxsyntax.Tokenize(string(src))
	var (
		args  []string
		depth int
		// block is the kind of the top-level block being read: "" for
		// none or one that does not matter.
		block string
		up    upstreamBlock
		proxy streamProxy
		// listens counts the server block's listen directives; tcpListen
		// whether one of them is not UDP.
		listens   int
		tcpListen bool
	)
	// The tokens before a syntax error still count: blocks completed
	// before it are kept.
	for _, tok := range toks {
		switch tok.Kind {
		case nginxsyntax.Word:
			args = append(args, tok.Text)
			continue
		case nginxsyntax.Open:
			if len(args) == 0 {
				out.problems = append(out.problems, fmt.Sprintf("line %d: unexpected \"{\"", tok.Line))
				return out
			}
			if depth == 0 {
				block = ""
				switch {
				case args[0] == "upstream" && len(args) == 2:
					if msg := upstreamNameProblem(args[1]); msg != "" {
						out.problems = append(out.problems, fmt.Sprintf("line %d: upstream %.64q: %s", tok.Line, args[1], msg))
					} else {
						block, up = "upstream", upstreamBlock{name: args[1]}
					}
				case args[0] == "server" && len(args) == 1:
					block, proxy, listens, tcpListen = "server", streamProxy{}, 0, false
				}
			}
			depth++
			args = args[:0]
		case nginxsyntax.Close:
			if len(args) > 0 {
				out.problems = append(out.problems, fmt.Sprintf("line %d: unexpected \"}\"", tok.Line))
				return out
			}
			if depth == 0 {
				out.problems = append(out.problems, fmt.Sprintf("line %d: unexpected \"}\"", tok.Line))
				return out
			}
			depth--
			if depth == 0 {
				switch block {
				case "upstream":
					out.upstreams = append(out.upstreams, up)
				case "server":
					if proxy.upstream != "" {
						proxy.udpOnly = listens > 0 && !tcpListen
						out.proxies = append(out.proxies, proxy)
					}
				}
				block = ""
			}
		case nginxsyntax.Semicolon:
			if len(args) == 0 {
				out.problems = append(out.problems, fmt.Sprintf("line %d: unexpected \";\"", tok.Line))
				return out
			}
			if depth == 1 {
				switch {
				case block == "upstream" && args[0] == "server" && len(args) >= 2:
					if addr, ok := upstreamServer(args[1:]); ok {
						up.servers = append(up.servers, addr)
					} else if addr != "" {
						out.problems = append(out.problems, fmt.Sprintf("line %d: upstream %q: server %.64q: not host:port with an IP address or DNS name and a port from 1 to 65535", tok.Line, up.name, addr))
					}
				case block == "server" && args[0] == "listen" && len(args) >= 2:
					listens++
					if !slices.Contains(args[2:], "udp") {
						tcpListen = true
					}
				case block == "server" && args[0] == "proxy_pass" && len(args) == 2:
					proxy.upstream = args[1]
				}
			}
			args = args[:0]
		}
	}
	switch {
	case err != nil:
		out.problems = append(out.problems, err.Error())
	case depth > 0 || len(args) > 0:
		out.problems = append(out.problems, fmt.Sprintf("line %d: unexpected end of file", lines))
	}
	return out
}

// upstreamServer checks a server line's arguments (address, then
// parameters). ok is false for a server marked down (addr empty) and for
// an address that is not host:port (addr set).
func upstreamServer(args []string) (addr string, ok bool) {
	if slices.Contains(args[1:], "down") {
		return "", false
	}
	if !nginxsyntax.ValidServerAddress(args[0]) {
		return args[0], false
	}
	return args[0], true
}

// upstreamNameProblem says why a block name is not reported: the result
// shows it to a person, so it must be short printable text.
func upstreamNameProblem(name string) string {
	switch {
	case name == "":
		return "empty name"
	case len(name) > maxUpstreamName:
		return fmt.Sprintf("name longer than %d bytes", maxUpstreamName)
	case !utf8.ValidString(name):
		return "name is not UTF-8"
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return "name holds a control or unprintable character"
		}
	}
	return ""
}
