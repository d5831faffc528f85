// Package overview is the pipeline overview page the binary serves at /:
// the decisions as they are made (streamed to the browser with
// server-sent events), each build's journey through the pipeline (built,
// tagged, signed, tested, decided, with the time each step took), the
// composes and what blocks them, and the dependency trace drawn as a
// graph.
//
// The page is server-rendered HTML (html/template) with a small script
// and style sheet embedded with go:embed: no CDN, no build step. Its data
// comes from two places. The decisions and journeys are read by an
// Overview from the input and decision topics, read_committed, starting
// Config.Lookback ago (not from the beginning: the page shows what is
// recent); they are kept in bounded memory (Config.RecentDecisions
// decisions, Config.MaxBuilds journeys of at most MaxSteps steps). The
// composes and the dependency graph are the tables every instance already
// holds (compose.Table, deps.Table); the page only reads them.
//
// Every route is a GET registered through the server's Handle, so the
// server's read policy (tokens, the in-flight cap) applies to the page as
// to the other read APIs. A stream holds one in-flight request for its
// whole life, so streams have their own, lower bound (Config.MaxStreams):
// they can never take the whole in-flight cap from the APIs.
package overview
