package kclient

import (
	"context"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// txnRetryBackoff is the broker setting behind most of the exactly-once
// latency tail (DESIGN.md, "Latency"), and the most it should be.
const (
	txnRetryBackoff    = "add.partitions.to.txn.retry.backoff.ms"
	txnRetryBackoffMax = 5
)

// BrokerAdvice reads the brokers' settings that decide how fast the
// processors' transactions commit and returns one line of advice per
// broker and setting that slows them, with what to set instead. It is
// advice, not an error: the processors work either way. A cluster whose
// settings the client may not read (no DescribeConfigs on the cluster) or
// that does not report them (an embedded broker) gets no advice and no
// error; err is a broker that cannot be asked at all.
func BrokerAdvice(ctx context.Context, cl *kgo.Client) ([]string, error) {
	adm := kadm.NewClient(cl)
	meta, err := adm.BrokerMetadata(ctx)
	if err != nil {
		return nil, err
	}
	rcs, err := adm.DescribeBrokerConfigs(ctx, meta.Brokers.NodeIDs()...)
	if err != nil {
		return nil, nil // not allowed or not supported: nothing to say
	}
	var advice []string
	for _, rc := range rcs {
		if rc.Err != nil {
			continue
		}
		for _, c := range rc.Configs {
			if c.Key != txnRetryBackoff || c.Value == nil {
				continue
			}
			ms, err := strconv.Atoi(*c.Value)
			if err != nil || ms <= txnRetryBackoffMax {
				continue
			}
			advice = append(advice, fmt.Sprintf(
				"broker %s: %s=%d: a transaction begun while the coordinator still writes the previous one's markers "+
					"waits %d ms (and more, up to add.partitions.to.txn.retry.backoff.max.ms) before its first write; "+
					"decisions then take tens of milliseconds longer. Set it to 1 (and the max to 20) on every broker "+
					"(DESIGN.md, \"Latency\")", rc.Name, txnRetryBackoff, ms, ms))
		}
	}
	return advice, nil
}
