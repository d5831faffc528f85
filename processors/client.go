package processors

import (
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/internal/kclient"
)

// NewClient returns a Kafka client of brokers with opts, then shared: the
// process's shared options (Config.ClientOpts: TLS, SASL, hooks), always
// last so that no client of a processor can leave out or override them.
// Every client of this package and its sub-packages is built here or by
// newSession, the restore path's included.
func NewClient(brokers []string, shared []kgo.Opt, opts ...kgo.Opt) (*kgo.Client, error) {
	return kclient.NewClient(brokers, shared, opts...)
}

// newSession is NewClient for the runner's (and apply's) group transact
// session.
func newSession(brokers []string, shared []kgo.Opt, opts ...kgo.Opt) (*kgo.GroupTransactSession, error) {
	return kclient.NewGroupTransactSession(brokers, shared, opts...)
}
