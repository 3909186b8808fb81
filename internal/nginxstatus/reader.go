package nginxstatus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Timeout bounds one reading, from dialling to the end of the body.
const Timeout = time.Second

// Reader reads the status block of the node's nginx and keeps the previous
// successful reading to compute the request rate. Safe for concurrent use.
type Reader struct {
	url    string
	client *http.Client

	mu       sync.Mutex
	prev     Status
	prevTime time.Time // zero until the first successful reading
}

// NewReader returns a Reader that dials addr (host:port, an IPv6 host in
// brackets) and always asks for Host at Path. A nil client gets one that
// never uses a proxy, opens a fresh connection for each reading (so the
// reader holds no idle connection that nginx would count as waiting) and
// gives up after Timeout. With any client, redirects are not followed and a
// reading takes at most Timeout.
func NewReader(addr string, client *http.Client) *Reader {
	var c http.Client
	if client != nil {
		c = *client
	} else {
		c.Transport = &http.Transport{
			Proxy:                  nil,
			DialContext:            (&net.Dialer{Timeout: Timeout}).DialContext,
			DisableKeepAlives:      true,
			DisableCompression:     true,
			ResponseHeaderTimeout:  Timeout,
			MaxResponseHeaderBytes: 16 << 10,
		}
	}
	if c.Timeout <= 0 || c.Timeout > Timeout {
		c.Timeout = Timeout
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	u := url.URL{Scheme: "http", Host: addr, Path: Path}
	return &Reader{url: u.String(), client: &c}
}

// Read fetches and parses the counters, taken at now, and returns them with
// the request rate per second since the previous successful reading. The
// rate is 0 on the first reading, when requests went down (nginx restarted;
// this reading becomes the new base) and when now is not after the previous
// reading. A failed reading leaves the previous one as the base. The
// reading's own request is one of those counted.
func (r *Reader) Read(ctx context.Context, now time.Time) (*Status, float64, error) {
	s, err := r.fetch(ctx)
	if err != nil {
		return nil, 0, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var rate float64
	if !r.prevTime.IsZero() && s.Requests >= r.prev.Requests {
		if dt := now.Sub(r.prevTime).Seconds(); dt > 0 {
			rate = float64(s.Requests-r.prev.Requests) / dt
		}
	}
	r.prev, r.prevTime = s, now
	return &s, rate, nil
}

func (r *Reader) fetch(ctx context.Context) (Status, error) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return Status{}, fmt.Errorf("nginx status request: %w", err)
	}
	req.Host = Host
	resp, err := r.client.Do(req)
	if err != nil {
		return Status{}, r.failed("", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Status{}, fmt.Errorf("read nginx status: %s for host %s answered HTTP %d, want 200; is the status block in the applied release?", r.url, Host, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodySize+1))
	if err != nil {
		return Status{}, r.failed(" body", err)
	}
	return Parse(body)
}

// failed describes a request that did not complete, naming the timeout when
// that is what ended it.
func (r *Reader) failed(what string, err error) error {
	var te interface{ Timeout() bool }
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &te) && te.Timeout() {
		return fmt.Errorf("read nginx status%s: no answer from %s within the %s timeout: %w", what, r.url, Timeout, err)
	}
	return fmt.Errorf("read nginx status%s: %w", what, err)
}
