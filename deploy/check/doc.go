// Package check holds the tests of deploy/'s artifacts: the Kubernetes
// manifests (deploy/k8s), the systemd unit (deploy/systemd), the Prometheus
// alert rules (deploy/prometheus) and the Grafana dashboard
// (deploy/grafana).
//
// It is a module of its own so that what the tests need to read those
// files as their consumers do (Prometheus' rule parser and PromQL parser,
// Kubernetes' API types) stays out of the factory2 binary's go.mod.
//
// The metric check builds cmd/factory2 from the main module, runs the
// sample pipeline with `factory2 dev --sample`, scrapes its /metrics and
// requires every metric name the rules and the dashboard use to be one the
// binary exports.
package check
