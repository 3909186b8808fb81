package nginx

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// RevisionURLCheck returns a Config.ReloadCheck that proves a revision is
// live by asking nginx itself: it polls rawURL until the answer is 200 with
// the decimal revision as its body, which the rendered configuration
// provides with, for example,
//
//	location = /.gatehouse/revision { return 200 "<revision>"; }
//
// Connections are not reused, so an old worker that is still draining
// cannot answer for the new configuration.
func RevisionURLCheck(rawURL string) (func(ctx context.Context, revision uint64) error, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("reload check url %q: must be an http or https URL with a host and no credentials", rawURL)
	}
	client := &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
		Timeout:   5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	target := u.String()
	return func(ctx context.Context, revision uint64) error {
		want := strconv.FormatUint(revision, 10)
		var last string
		for {
			got, err := fetchRevision(ctx, client, target)
			if err == nil && got == want {
				return nil
			}
			switch {
			case err != nil && ctx.Err() != nil && last != "":
				// Cut short by the deadline: the previous answer says more.
			case err != nil:
				last = err.Error()
			default:
				last = fmt.Sprintf("answered revision %q, want %q", got, want)
			}
			t := time.NewTimer(10 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("%s: %s", target, last)
			case <-t.C:
			}
		}
	}, nil
}

func fetchRevision(ctx context.Context, client *http.Client, target string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d", resp.StatusCode)
	}
	return strings.TrimSpace(string(body)), nil
}
