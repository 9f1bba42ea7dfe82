// promql-check parses PromQL expressions with Prometheus's own parser and names the metrics
// each one selects, so the tests can prove that a dashboard's queries (and the alert rules)
// are valid PromQL and ask only for metrics the replicator and the operator export.
//
// Input on stdin: a JSON array of expressions. Output on stdout: a JSON array, one object per
// expression, in order: {"expr": ..., "error": "..." or "", "metrics": [names...]}.
// A selector without a metric name (e.g. {__name__=~"cdc_.*"}) is reported as an error: the
// tests need every selector to name one metric.
//
// Built by e2e/lab/tools/build-promtool.sh against the same Prometheus module as promtool.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

type result struct {
	Expr    string   `json:"expr"`
	Error   string   `json:"error"`
	Metrics []string `json:"metrics"`
}

func check(p parser.Parser, input string) result {
	out := result{Expr: input, Metrics: []string{}}
	expr, err := p.ParseExpr(input)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	names := map[string]bool{}
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		vs, ok := node.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		if name == "" {
			for _, m := range vs.LabelMatchers {
				if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
					name = m.Value
				}
			}
		}
		if name == "" {
			out.Error = fmt.Sprintf("selector %s names no metric", vs.String())
			return nil
		}
		names[name] = true
		return nil
	})
	for name := range names {
		out.Metrics = append(out.Metrics, name)
	}
	sort.Strings(out.Metrics)
	return out
}

func main() {
	var exprs []string
	if err := json.NewDecoder(os.Stdin).Decode(&exprs); err != nil {
		fmt.Fprintf(os.Stderr, "promql-check: stdin must be a JSON array of strings: %v\n", err)
		os.Exit(2)
	}
	p := parser.NewParser(parser.Options{})
	results := make([]result, 0, len(exprs))
	for _, e := range exprs {
		results = append(results, check(p, e))
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(results); err != nil {
		fmt.Fprintf(os.Stderr, "promql-check: %v\n", err)
		os.Exit(2)
	}
}
