package acme

import (
	"errors"
	"fmt"
	"strings"
	"time"

	legoacme "github.com/go-acme/lego/v5/acme"
)

// Problem is an error document from the CA (RFC 8555 section 6.7), kept
// as the CA wrote it.
type Problem struct {
	// Type is the problem URN, e.g. urn:ietf:params:acme:error:rejectedIdentifier.
	Type   string
	Detail string
	Status int
	// Subproblems name the identifiers that failed, when the CA says.
	Subproblems []Subproblem
	// RetryAfter is the wait the CA asked for when it rate-limited us.
	RetryAfter time.Duration
}

// Subproblem is a problem about one identifier.
type Subproblem struct {
	Identifier string
	Type       string
	Detail     string
}

func (p *Problem) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the CA answered %s: %s", p.Type, p.Detail)
	for _, s := range p.Subproblems {
		fmt.Fprintf(&b, "; %s: %s: %s", s.Identifier, s.Type, s.Detail)
	}
	if p.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", p.RetryAfter)
	}
	return b.String()
}

// RateLimited reports whether the CA refused because of a rate limit.
func (p *Problem) RateLimited() bool {
	return p.Type == legoacme.RateLimitedErrorType
}

// wrapCA wraps err with what we were doing. When the CA sent a problem
// document anywhere in err's chain, that document is what the caller sees.
func wrapCA(doing string, err error) error {
	var pd *legoacme.ProblemDetails
	if !errors.As(err, &pd) {
		return fmt.Errorf("%s: %w", doing, err)
	}
	p := &Problem{Type: pd.Type, Detail: pd.Detail, Status: pd.HTTPStatus}
	for _, s := range pd.SubProblems {
		p.Subproblems = append(p.Subproblems, Subproblem{Identifier: s.Identifier.Value, Type: s.Type, Detail: s.Detail})
	}
	var rl *legoacme.RateLimitedError
	if errors.As(err, &rl) {
		p.RetryAfter = rl.RetryAfter
	}
	return fmt.Errorf("%s: %w", doing, p)
}
