package controller

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/ent/dnscheck"
)

// A failed DNS check shows as a short badge in the domain list with the
// message beside it (clipped, whole on hover), not as a badge full of text.
func TestDomainListDNSProblem(t *testing.T) {
	e := newEditEnv(t)
	ctx := context.Background()
	db := e.c.db.Client
	d := db.Domain.Create().SetName("shop.example").SaveX(ctx)
	msg := `could not check CAA for shop.example: lookup <ca> on 127.0.0.1:1: "refused"`
	db.DNSCheck.Create().SetDomainID(d.ID).SetName("shop.example").SetKind(dnscheck.KindAddress).SetStatus("error").SetMessage(msg).
		SetCheckedAt(time.Now().Add(time.Hour)).ExecX(ctx) // newer than any check the controller runs meanwhile
	cl := e.browser(e.userLogin)
	code, _, page := send(t, cl, "GET", e.base+"/domains", nil)
	escaped := `could not check CAA for shop.example: lookup &lt;ca&gt; on 127.0.0.1:1: &#34;refused&#34;`
	if code != http.StatusOK || !strings.Contains(page, `>problem</a><span class="cell-note" title="`+escaped+`">`+escaped+`</span>`) {
		t.Fatalf("domain list: %d\n%s", code, page)
	}
	if strings.Contains(page, "<ca>") {
		t.Error("the message is not escaped")
	}
}
