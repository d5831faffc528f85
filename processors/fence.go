package processors

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// errNotMember: the runner is not (yet, or any more) a group member.
var errNotMember = errors.New("processors: not a member of the group")

// fenceGeneration adds this member's committed offsets, unchanged, to the
// open transaction with its group generation. The group coordinator
// refuses them (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID) if the member was
// replaced, and the transaction then aborts. A transaction that consumed
// records gets this check from GroupTransactSession.End, which commits
// their offsets; one that consumed nothing (a punctuation) would otherwise
// commit without any check, so a member that lost its partitions without
// knowing it yet could still write decisions and changelog records for
// them.
func (r *Runner) fenceGeneration(ctx context.Context) error {
	cl := r.sess.Client()
	member, gen := cl.GroupMetadata()
	if member == "" || gen < 0 {
		return errNotMember
	}
	pid, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		return fmt.Errorf("processors: %s: fencing: %w", r.spec.Name, err)
	}
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID = r.txnID
	req.Group = r.group
	req.ProducerID, req.ProducerEpoch = pid, epoch
	req.Generation, req.MemberID = gen, member
	names := map[[16]byte]string{} // a v6+ response names topics by id only
	r.mu.Lock()
	for topic, ps := range cl.CommittedOffsets() {
		names[r.topicIDs[topic]] = topic
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic, rt.TopicID = topic, r.topicIDs[topic] // TxnOffsetCommit v6+ names topics by id
		for p, eo := range ps {
			if r.tasks[p] == nil || !r.owned[topic][p] {
				continue
			}
			rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch = p, eo.Offset, eo.Epoch
			rt.Partitions = append(rt.Partitions, rp)
		}
		if len(rt.Partitions) > 0 {
			req.Topics = append(req.Topics, rt)
		}
	}
	r.mu.Unlock()
	if len(req.Topics) == 0 {
		return errNotMember
	}
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = r.txnID, pid, epoch, r.group
	addResp, err := add.RequestWith(ctx, cl)
	if err == nil {
		err = kerr.ErrorForCode(addResp.ErrorCode)
	}
	if err != nil {
		return fmt.Errorf("processors: %s: fencing: adding the group to the transaction: %w", r.spec.Name, err)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("processors: %s: fencing: %w", r.spec.Name, err)
	}
	for _, t := range resp.Topics {
		topic := t.Topic
		if topic == "" {
			topic = names[t.TopicID]
		}
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("processors: %s: fencing %s/%d with generation %d: %w", r.spec.Name, topic, p.Partition, gen, err)
			}
		}
	}
	return nil
}
