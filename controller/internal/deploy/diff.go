package deploy

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/gatehousehq/gatehouse/controller/internal/nginxconf"
)

// diffContext is the number of unchanged lines shown around each change.
const diffContext = 3

// maxEdits bounds the edit distance the line diff searches for; beyond it the differing
// middle of a file is shown as removed and added whole, which is still a correct diff.
const maxEdits = 2000

// Diff returns a unified diff from revision fromRev to revision toRev of the server's
// configuration, file by file in path order; fromRev 0 stands for no configuration. Two
// equal revisions give an empty diff.
func (d *Deployer) Diff(ctx context.Context, serverID int, fromRev, toRev int64) (string, error) {
	load := func(n int64) ([]nginxconf.File, error) {
		if n == 0 {
			return nil, nil
		}
		rev, err := d.Revision(ctx, serverID, n)
		if err != nil {
			return nil, err
		}
		return Files(rev)
	}
	from, err := load(fromRev)
	if err != nil {
		return "", err
	}
	to, err := load(toRev)
	if err != nil {
		return "", err
	}
	return DiffFiles(from, to), nil
}

// DiffFiles returns a unified diff between two file sets.
func DiffFiles(from, to []nginxconf.File) string {
	a := make(map[string][]byte, len(from))
	b := make(map[string][]byte, len(to))
	var paths []string
	for _, f := range from {
		a[f.Path] = f.Content
		paths = append(paths, f.Path)
	}
	for _, f := range to {
		b[f.Path] = f.Content
		if _, ok := a[f.Path]; !ok {
			paths = append(paths, f.Path)
		}
	}
	slices.Sort(paths)
	var out strings.Builder
	for _, p := range paths {
		oldC, inA := a[p]
		newC, inB := b[p]
		if inA && inB && string(oldC) == string(newC) {
			continue
		}
		oldName, newName := "a/"+p, "b/"+p
		if !inA {
			oldName = "/dev/null"
		}
		if !inB {
			newName = "/dev/null"
		}
		out.WriteString(unified(oldName, newName, string(oldC), string(newC)))
	}
	return out.String()
}

// splitLines splits s into lines that keep their "\n"; a last line without one is kept
// as it is, so a missing final newline shows as a change.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

type opKind byte

const (
	opEqual  opKind = ' '
	opDelete opKind = '-'
	opInsert opKind = '+'
)

// op is one line of an edit script; a and b are its 0-based line numbers in the old and
// new text (the position it would have, for lines absent from one side).
type op struct {
	kind opKind
	a, b int
	text string
}

// unified renders the diff of two texts in unified format with diffContext lines of
// context; it is empty when the texts are equal.
func unified(oldName, newName, oldText, newText string) string {
	a, b := splitLines(oldText), splitLines(newText)
	ops := editScript(a, b)
	var changes []int
	for i, o := range ops {
		if o.kind != opEqual {
			changes = append(changes, i)
		}
	}
	if len(changes) == 0 {
		return ""
	}
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", oldName, newName)
	for i := 0; i < len(changes); {
		start := max(changes[i]-diffContext, 0)
		j := i
		for j+1 < len(changes) && changes[j+1]-changes[j] <= 2*diffContext {
			j++
		}
		end := min(changes[j]+diffContext+1, len(ops))
		writeHunk(&out, ops[start:end])
		i = j + 1
	}
	return out.String()
}

func writeHunk(out *strings.Builder, ops []op) {
	aStart, bStart := ops[0].a, ops[0].b
	var aCount, bCount int
	for _, o := range ops {
		if o.kind != opInsert {
			aCount++
		}
		if o.kind != opDelete {
			bCount++
		}
	}
	fmt.Fprintf(out, "@@ -%s +%s @@\n", hunkRange(aStart, aCount), hunkRange(bStart, bCount))
	for _, o := range ops {
		out.WriteByte(byte(o.kind))
		out.WriteString(o.text)
		if !strings.HasSuffix(o.text, "\n") {
			out.WriteString("\n\\ No newline at end of file\n")
		}
	}
}

// hunkRange formats a hunk's line range as GNU diff does: 1-based start, the count
// omitted when it is 1, and an empty range placed after the line it follows.
func hunkRange(start, count int) string {
	switch count {
	case 0:
		return fmt.Sprintf("%d,0", start)
	case 1:
		return fmt.Sprintf("%d", start+1)
	}
	return fmt.Sprintf("%d,%d", start+1, count)
}

// editScript returns a shortest edit script turning a into b (Myers' O(ND) algorithm) for
// texts up to maxEdits changes apart, and a correct longer one beyond that.
func editScript(a, b []string) []op {
	// Common prefix and suffix need no search.
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	ops := make([]op, 0, len(a)+len(b))
	for i := range pre {
		ops = append(ops, op{opEqual, i, i, a[i]})
	}
	ma, mb := a[pre:len(a)-suf], b[pre:len(b)-suf]
	for _, o := range myers(ma, mb) {
		o.a += pre
		o.b += pre
		ops = append(ops, o)
	}
	for i := range suf {
		ia, ib := len(a)-suf+i, len(b)-suf+i
		ops = append(ops, op{opEqual, ia, ib, a[ia]})
	}
	return ops
}

// myers finds a shortest edit script with Myers' greedy algorithm, keeping the frontier
// of every step for the walk back.
func myers(a, b []string) []op {
	n, m := len(a), len(b)
	if n == 0 || m == 0 {
		return replaceAll(a, b)
	}
	// Lines are compared as small integers.
	ids := map[string]int{}
	intern := func(lines []string) []int {
		out := make([]int, len(lines))
		for i, l := range lines {
			id, ok := ids[l]
			if !ok {
				id = len(ids)
				ids[l] = id
			}
			out[i] = id
		}
		return out
	}
	ai, bi := intern(a), intern(b)

	limit := min(n+m, maxEdits)
	off := limit + 1
	v := make([]int, 2*limit+3)
	// trace[d] holds v[k] for k in [-d, d] after step d.
	var trace [][]int
	found := -1
	for d := 0; d <= limit && found < 0; d++ {
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				x = v[off+k+1]
			} else {
				x = v[off+k-1] + 1
			}
			y := x - k
			for x < n && y < m && ai[x] == bi[y] {
				x++
				y++
			}
			v[off+k] = x
			if x >= n && y >= m {
				found = d
			}
		}
		trace = append(trace, slices.Clone(v[off-d:off+d+1]))
	}
	if found < 0 {
		return replaceAll(a, b)
	}

	// Walk back from (n, m) to (0, 0), collecting the script in reverse.
	var rev []op
	x, y := n, m
	for d := found; d > 0; d-- {
		prev := trace[d-1] // k in [-(d-1), d-1], index k+d-1
		k := x - y
		var pk int
		if k == -d || (k != d && prev[k-1+d-1] < prev[k+1+d-1]) {
			pk = k + 1
		} else {
			pk = k - 1
		}
		px := prev[pk+d-1]
		py := px - pk
		for x > px && y > py {
			x--
			y--
			rev = append(rev, op{opEqual, x, y, a[x]})
		}
		if x == px {
			y--
			rev = append(rev, op{opInsert, x, y, b[y]})
		} else {
			x--
			rev = append(rev, op{opDelete, x, y, a[x]})
		}
	}
	for x > 0 && y > 0 {
		x--
		y--
		rev = append(rev, op{opEqual, x, y, a[x]})
	}
	slices.Reverse(rev)
	return rev
}

// replaceAll is the script that deletes all of a and inserts all of b.
func replaceAll(a, b []string) []op {
	ops := make([]op, 0, len(a)+len(b))
	for i, l := range a {
		ops = append(ops, op{opDelete, i, 0, l})
	}
	for i, l := range b {
		ops = append(ops, op{opInsert, len(a), i, l})
	}
	return ops
}
