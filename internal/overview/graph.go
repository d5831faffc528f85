package overview

import (
	"fmt"
	"hash/fnv"
	"net/url"

	"github.com/factory2/factory2/processors/deps"
)

// The layered drawing of a trace: one column per depth (the start on the
// left), the nodes of a column in walk order, each edge a curve from the
// node it was reached from.
const (
	nodeW, nodeH = 230, 26
	colGap       = 90
	rowGap       = 12
	margin       = 10
	labelMax     = 34
	// maxDrawn bounds the nodes drawn; the page says when the trace had
	// more.
	maxDrawn = 300
)

// svgGraph is what the page's template draws.
type svgGraph struct {
	Width, Height int
	Nodes         []svgNode
	Edges         []svgEdge
}

type svgNode struct {
	X, Y, W, H   int
	TX, TY       int
	Label, Title string
	Href         string
	Class        string
	Start        bool
}

type svgEdge struct {
	Path   string
	LX, LY int
	Label  string
}

// layout places t's nodes in columns by depth.
func layout(t *deps.Trace) svgGraph {
	var g svgGraph
	rows := map[int]int{} // depth → nodes placed
	at := map[string]svgNode{}
	for _, n := range t.Nodes {
		x := margin + n.Depth*(nodeW+colGap)
		y := margin + rows[n.Depth]*(nodeH+rowGap)
		rows[n.Depth]++
		label := n.Key
		if len([]rune(label)) > labelMax {
			label = string([]rune(label)[:labelMax-1]) + "…"
		}
		sn := svgNode{
			X: x, Y: y, W: nodeW, H: nodeH, TX: x + 8, TY: y + nodeH/2 + 4,
			Label: label, Title: n.Key, Class: typeClass(n.Type), Start: n.Parent == "",
			Href: "/trace?" + url.Values{"node": {n.Key}, "direction": {string(t.Direction)}}.Encode(),
		}
		at[n.Key] = sn
		g.Nodes = append(g.Nodes, sn)
		g.Width = max(g.Width, x+nodeW+margin)
		g.Height = max(g.Height, y+nodeH+margin)
		if p, ok := at[n.Parent]; ok && n.Parent != "" {
			x1, y1 := p.X+p.W, p.Y+p.H/2
			x2, y2 := sn.X, sn.Y+sn.H/2
			mid := (x1 + x2) / 2
			e := svgEdge{
				Path:  fmt.Sprintf("M%d,%d C%d,%d %d,%d %d,%d", x1, y1, mid, y1, mid, y2, x2, y2),
				LX:    x2 - 4,
				LY:    y2 - 4,
				Label: n.Relation,
			}
			g.Edges = append(g.Edges, e)
		}
	}
	return g
}

// typeClass gives each node type one of a few colours, the same every
// time: types are data, not an enum.
func typeClass(typ string) string {
	switch typ {
	case "build":
		return "t-build"
	case "source":
		return "t-source"
	case "compose", "product":
		return "t-compose"
	}
	h := fnv.New32a()
	h.Write([]byte(typ))
	return fmt.Sprintf("t-%d", h.Sum32()%4)
}
