package deploy

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gatehousehq/gatehouse/controller/internal/nginxconf"
)

func TestUnified(t *testing.T) {
	cases := []struct {
		name     string
		old, new string
		want     string
	}{
		{"equal", "a\nb\n", "a\nb\n", ""},
		{"one line changed", "a\nb\nc\n", "a\nB\nc\n", "--- o\n+++ n\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"},
		{"added to empty", "", "x\ny\n", "--- o\n+++ n\n@@ -0,0 +1,2 @@\n+x\n+y\n"},
		{"removed all", "x\n", "", "--- o\n+++ n\n@@ -1 +0,0 @@\n-x\n"},
		{"insert at start", "b\nc\n", "a\nb\nc\n", "--- o\n+++ n\n@@ -1,2 +1,3 @@\n+a\n b\n c\n"},
		{"missing final newline", "a\nb", "a\nb\n", "--- o\n+++ n\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n"},
		{
			"two hunks far apart",
			"1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n",
			"1\nX\n3\n4\n5\n6\n7\n8\n9\n10\nY\n12\n",
			"--- o\n+++ n\n@@ -1,5 +1,5 @@\n 1\n-2\n+X\n 3\n 4\n 5\n@@ -8,5 +8,5 @@\n 8\n 9\n 10\n-11\n+Y\n 12\n",
		},
		{
			"close changes share a hunk",
			"1\n2\n3\n4\n5\n6\n7\n8\n",
			"1\nX\n3\n4\n5\n6\nY\n8\n",
			"--- o\n+++ n\n@@ -1,8 +1,8 @@\n 1\n-2\n+X\n 3\n 4\n 5\n 6\n-7\n+Y\n 8\n",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := unified("o", "n", c.old, c.new); got != c.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, c.want)
			}
		})
	}
}

// lcs is the textbook dynamic program, used to check that the edit script is shortest.
func lcs(a, b []string) int {
	dp := make([][]int, len(a)+1)
	for i := range dp {
		dp[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				dp[i][j] = dp[i+1][j+1] + 1
			} else {
				dp[i][j] = max(dp[i+1][j], dp[i][j+1])
			}
		}
	}
	return dp[0][0]
}

// TestEditScriptIsShortestAndCorrect compares random texts over a tiny alphabet, where
// lines repeat a lot: the script must rebuild both texts and be as short as the LCS allows.
func TestEditScriptIsShortestAndCorrect(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	text := func() []string {
		n := r.IntN(30)
		out := make([]string, n)
		for i := range out {
			out[i] = string(rune('a'+r.IntN(4))) + "\n"
		}
		return out
	}
	for i := range 2000 {
		a, b := text(), text()
		ops := editScript(a, b)
		var gotA, gotB []string
		edits := 0
		for _, o := range ops {
			if o.kind != opInsert {
				if a[o.a] != o.text {
					t.Fatalf("case %d: op %+v does not match line %d of a", i, o, o.a)
				}
				gotA = append(gotA, o.text)
			}
			if o.kind != opDelete {
				if b[o.b] != o.text {
					t.Fatalf("case %d: op %+v does not match line %d of b", i, o, o.b)
				}
				gotB = append(gotB, o.text)
			}
			if o.kind != opEqual {
				edits++
			}
		}
		if strings.Join(gotA, "") != strings.Join(a, "") || strings.Join(gotB, "") != strings.Join(b, "") {
			t.Fatalf("case %d: script does not rebuild the texts\na=%q\nb=%q", i, a, b)
		}
		if want := len(a) + len(b) - 2*lcs(a, b); edits != want {
			t.Fatalf("case %d: %d edits, shortest is %d\na=%q\nb=%q", i, edits, want, a, b)
		}
	}
}

func TestEditScriptBeyondTheLimitStaysCorrect(t *testing.T) {
	var a, b []string
	for i := range maxEdits + 10 {
		a = append(a, "old "+string(rune('a'+i%26))+"\n")
		b = append(b, "new "+string(rune('a'+i%26))+"\n")
	}
	a = append(a, "same\n")
	b = append(b, "same\n")
	ops := editScript(a, b)
	var del, ins, eq int
	for _, o := range ops {
		switch o.kind {
		case opDelete:
			del++
		case opInsert:
			ins++
		case opEqual:
			eq++
		}
	}
	if del != len(a)-1 || ins != len(b)-1 || eq != 1 {
		t.Errorf("got %d deletions, %d insertions, %d equal lines", del, ins, eq)
	}
}

func TestDiffFilesOrdersByPath(t *testing.T) {
	from := []nginxconf.File{{Path: "b.conf", Content: []byte("x\n")}, {Path: "a.conf", Content: []byte("1\n")}}
	to := []nginxconf.File{{Path: "a.conf", Content: []byte("2\n")}, {Path: "c.conf", Content: []byte("new\n")}}
	want := "--- a/a.conf\n+++ b/a.conf\n@@ -1 +1 @@\n-1\n+2\n" +
		"--- a/b.conf\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n" +
		"--- /dev/null\n+++ b/c.conf\n@@ -0,0 +1 @@\n+new\n"
	if got := DiffFiles(from, to); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}
