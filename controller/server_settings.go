package controller

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/gatehousehq/gatehouse/controller/internal/alerts"
	"github.com/gatehousehq/gatehouse/controller/internal/nginxconf"
	"github.com/gatehousehq/gatehouse/controller/internal/nodes"
	"github.com/gatehousehq/gatehouse/controller/internal/provision"
	"github.com/gatehousehq/gatehouse/ent"
)

// MaxServerLabels bounds the labels of one server.
const MaxServerLabels = 16

// ServerSettings are what an admin sets on a server directly: the address
// the controller reaches its nginx at (health probes, the served-certificate
// watch) and the labels alert rules select servers by. A nil field is left
// as it is.
type ServerSettings struct {
	Name    *string   `json:"name,omitempty"`
	Address *string   `json:"address,omitempty"`
	Labels  *[]string `json:"labels,omitempty"`
	// RealIPFrom are the proxies in front of the node's nginx whose
	// RealIPHeader carries the client address (sent together; an empty
	// list turns it off).
	RealIPFrom   *[]string `json:"real_ip_from,omitempty"`
	RealIPHeader *string   `json:"real_ip_header,omitempty"`
	// UnknownNames is how the node's nginx answers names none of its
	// domains serves: "" (nginx's default, its first server), "close" or
	// "not_found".
	UnknownNames *string `json:"unknown_names,omitempty"`
	// CacheMaxSize bounds the disk the node's cache of proxied answers may
	// use ("500m", "10g"); empty means 1g.
	CacheMaxSize *string `json:"cache_max_size,omitempty"`
}

// UnknownNameChoices are the answers to unknown names an admin picks from,
// with what each does.
var UnknownNameChoices = []struct{ Value, Label string }{
	{"", "nginx's default: its first server on the address answers"},
	{string(nginxconf.UnknownClose), "close the connection without an answer"},
	{string(nginxconf.UnknownNotFound), "answer 404 Not Found"},
}

// SettingsError maps fields to messages a person can act on.
type SettingsError map[string]string

func (e SettingsError) Error() string {
	keys := make([]string, 0, len(e))
	for k := range e {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + e[k]
	}
	return strings.Join(parts, "; ")
}

// normalize checks every field by allowlist and returns them in the form
// they are stored in: an IP address or a lower-case host name (or empty),
// and labels trimmed, without blanks or repeats, in the order given.
func (in ServerSettings) normalize() (ServerSettings, error) {
	errs := SettingsError{}
	var out ServerSettings
	if in.Name != nil {
		n := strings.TrimSpace(*in.Name)
		if err := nodes.ValidName(n); err != nil {
			errs["name"] = "use 1-64 lowercase letters, digits, '.' or '-', starting and ending with a letter or digit"
		}
		out.Name = &n
	}
	if in.Address != nil {
		a := strings.TrimSpace(*in.Address)
		if a != "" {
			if err := provision.ValidateHost(a); err != nil {
				errs["address"] = "must be an IP address such as 192.0.2.10 or a host name such as node1.example.com, without scheme or port"
			} else if ip, err := netip.ParseAddr(a); err == nil {
				a = ip.String()
			} else {
				a = strings.ToLower(strings.TrimSuffix(a, "."))
			}
		}
		out.Address = &a
	}
	if in.Labels != nil {
		labels := []string{}
		for _, l := range *in.Labels {
			l = strings.TrimSpace(l)
			switch {
			case l == "" || slices.Contains(labels, l):
				continue
			case !alerts.ValidLabel(l):
				errs["labels"] = fmt.Sprintf("%q: each label is 1-63 letters, digits and . _ : / = -, starting with a letter or digit", clipText(l, 40))
			}
			labels = append(labels, l)
		}
		if len(labels) > MaxServerLabels {
			errs["labels"] = fmt.Sprintf("at most %d labels", MaxServerLabels)
		}
		out.Labels = &labels
	}
	switch {
	case in.RealIPFrom != nil:
		from, header := []string{}, ""
		if len(*in.RealIPFrom) > 0 {
			h := ""
			if in.RealIPHeader != nil {
				h = *in.RealIPHeader
			}
			rip, fe := nginxconf.NormalizeRealIP(nginxconf.RealIP{From: *in.RealIPFrom, Header: h})
			for k, m := range fe {
				field := "real_ip_from"
				if k == "header" {
					field = "real_ip_header"
				}
				if errs[field] == "" {
					errs[field] = m
				}
			}
			from, header = rip.From, rip.Header
		}
		out.RealIPFrom, out.RealIPHeader = &from, &header
	case in.RealIPHeader != nil:
		errs["real_ip_header"] = "send real_ip_from with it"
	}
	if in.CacheMaxSize != nil {
		c := strings.ToLower(strings.TrimSpace(*in.CacheMaxSize))
		if c != "" {
			if msg := nginxconf.CacheSizeProblem(c); msg != "" {
				errs["cache_max_size"] = msg
			}
		}
		out.CacheMaxSize = &c
	}
	if in.UnknownNames != nil {
		u := strings.TrimSpace(*in.UnknownNames)
		if !slices.ContainsFunc(UnknownNameChoices, func(c struct{ Value, Label string }) bool { return c.Value == u }) {
			errs["unknown_names"] = `must be "close", "not_found" or empty (nginx's default)`
		}
		out.UnknownNames = &u
	}
	if len(errs) > 0 {
		return ServerSettings{}, errs
	}
	return out, nil
}

// CheckServerSettings validates settings without storing them.
func CheckServerSettings(in ServerSettings) error {
	_, err := in.normalize()
	return err
}

// ParseLabels splits a comma- or space-separated list of labels.
func ParseLabels(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' })
}

// applyServerSettings validates in and stores it on s, returning the server
// as stored, a description of what changed ("" when nothing did) and
// whether the change reaches the node's nginx configuration.
func applyServerSettings(ctx context.Context, client *ent.Client, s *ent.Server, in ServerSettings) (*ent.Server, string, bool, error) {
	in, err := in.normalize()
	if err != nil {
		return nil, "", false, err
	}
	nginx := false
	upd := client.Server.UpdateOne(s)
	var changes []string
	if in.Name != nil && *in.Name != s.Name {
		upd.SetName(*in.Name)
		changes = append(changes, fmt.Sprintf("name %s → %s", s.Name, *in.Name))
	}
	if in.Address != nil && *in.Address != s.Address {
		upd.SetAddress(*in.Address)
		changes = append(changes, fmt.Sprintf("address %s → %s", orNone(s.Address), orNone(*in.Address)))
	}
	if in.Labels != nil && !slices.Equal(*in.Labels, s.Labels) && !(len(*in.Labels) == 0 && len(s.Labels) == 0) {
		upd.SetLabels(*in.Labels)
		changes = append(changes, fmt.Sprintf("labels %s → %s", orNone(strings.Join(s.Labels, ",")), orNone(strings.Join(*in.Labels, ","))))
	}
	if in.RealIPFrom != nil && (!slices.Equal(*in.RealIPFrom, s.RealIPFrom) && !(len(*in.RealIPFrom) == 0 && len(s.RealIPFrom) == 0) ||
		*in.RealIPHeader != s.RealIPHeader) {
		upd.SetRealIPFrom(*in.RealIPFrom).SetRealIPHeader(*in.RealIPHeader)
		changes = append(changes, fmt.Sprintf("trusted proxies %s → %s", realIPWords(s.RealIPFrom, s.RealIPHeader), realIPWords(*in.RealIPFrom, *in.RealIPHeader)))
		nginx = true
	}
	if in.UnknownNames != nil && *in.UnknownNames != s.UnknownNames {
		upd.SetUnknownNames(*in.UnknownNames)
		changes = append(changes, fmt.Sprintf("unknown names %s → %s", cmp.Or(s.UnknownNames, "default"), cmp.Or(*in.UnknownNames, "default")))
		nginx = true
	}
	if in.CacheMaxSize != nil && *in.CacheMaxSize != s.CacheMaxSize {
		upd.SetCacheMaxSize(*in.CacheMaxSize)
		changes = append(changes, fmt.Sprintf("cache size %s → %s", cmp.Or(s.CacheMaxSize, nginxconf.DefaultCacheMaxSize), cmp.Or(*in.CacheMaxSize, nginxconf.DefaultCacheMaxSize)))
		nginx = true
	}
	if len(changes) == 0 {
		return s, "", false, nil
	}
	saved, err := upd.Save(ctx)
	if ent.IsConstraintError(err) {
		return nil, "", false, SettingsError{"name": "another server has this name; choose another"}
	}
	if err != nil {
		return nil, "", false, fmt.Errorf("store the settings of server %s: %w", s.Name, err)
	}
	return saved, strings.Join(changes, "; "), nginx, nil
}

// realIPWords describes trusted proxies for the audit log.
func realIPWords(from []string, header string) string {
	if len(from) == 0 {
		return "(none)"
	}
	return strings.Join(from, ",") + " via " + header
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// clipText shortens s to at most n runes for a message.
func clipText(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
