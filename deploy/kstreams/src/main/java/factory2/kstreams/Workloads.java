package factory2.kstreams;

import java.nio.ByteBuffer;
import java.util.List;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.Stores;

/**
 * The two workloads of factory2's runtime benchmarks, written with the Processor API so
 * that, like factory2's processors, they emit one output per input (a DSL count() or
 * cogroup() behind a cached KTable would emit one per key per commit instead). Each keeps
 * its state in a persistent (RocksDB) key-value store with caching and a changelog: the
 * cache coalesces a key's writes between commits, as factory2's changelog carries the
 * last value of each key per transaction.
 *
 * <p>The code mirrors processors/bench_test.go: counter is its counter, aggregate its
 * aggregator; state values and outputs are byte-for-byte the same.
 */
final class Workloads {
  private Workloads() {}

  /** The store of each workload; its changelog topic is APPLICATION_ID-STORE-changelog. */
  static String store(String workload) {
    return switch (workload) {
      case "counter" -> "counts";
      case "aggregate" -> "agg";
      default -> throw new IllegalArgumentException("unknown workload " + workload);
    };
  }

  /**
   * Topology of workload reading inputs (one for counter, two co-partitioned ones for
   * aggregate, the first being the build events) and writing output.
   */
  static Topology topology(String workload, List<String> inputs, String output) {
    String store = store(workload);
    Topology t = new Topology();
    t.addSource("in", Serdes.Bytes().deserializer(), Serdes.ByteArray().deserializer(), inputs.toArray(new String[0]));
    switch (workload) {
      case "counter" -> {
        if (inputs.size() != 1) {
          throw new IllegalArgumentException("counter reads one input, got " + inputs);
        }
        t.addProcessor("process", () -> new Counter(store), "in");
      }
      case "aggregate" -> {
        if (inputs.size() != 2) {
          throw new IllegalArgumentException("aggregate reads two inputs, got " + inputs);
        }
        t.addProcessor("process", () -> new Aggregate(store, inputs.get(0)), "in");
      }
      default -> throw new IllegalArgumentException("unknown workload " + workload);
    }
    t.addStateStore(
        Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(store), Serdes.Bytes(), Serdes.ByteArray())
            .withCachingEnabled(),
        "process");
    t.addSink("out", output, Serdes.Bytes().serializer(), Serdes.ByteArray().serializer(), "process");
    return t;
  }

  /** counter: the count of the key's events so far, as an 8-byte big-endian value. */
  static final class Counter implements Processor<Bytes, byte[], Bytes, byte[]> {
    private final String storeName;
    private ProcessorContext<Bytes, byte[]> ctx;
    private KeyValueStore<Bytes, byte[]> store;

    Counter(String storeName) {
      this.storeName = storeName;
    }

    @Override
    public void init(ProcessorContext<Bytes, byte[]> ctx) {
      this.ctx = ctx;
      this.store = ctx.getStateStore(storeName);
    }

    @Override
    public void process(Record<Bytes, byte[]> r) {
      BinCodec.Event ev = BinCodec.decode(r.value());
      byte[] v = store.get(r.key());
      long n = (v == null ? 0 : ByteBuffer.wrap(v).getLong()) + 1;
      store.put(r.key(), ByteBuffer.allocate(8).putLong(n).array());
      String count = Long.toString(n);
      ctx.forward(r.withValue(BinCodec.encode(ev.id() + "#" + count, ev.nvr(), "", count)));
    }
  }

  /**
   * aggregate: per key, how many build events (the first input) and how many test events
   * (the second) were seen, two 8-byte big-endian counts; each input emits the key's
   * decision, "ready" once both kinds were seen, else "waiting".
   */
  static final class Aggregate implements Processor<Bytes, byte[], Bytes, byte[]> {
    private final String storeName;
    private final String builds;
    private ProcessorContext<Bytes, byte[]> ctx;
    private KeyValueStore<Bytes, byte[]> store;

    Aggregate(String storeName, String builds) {
      this.storeName = storeName;
      this.builds = builds;
    }

    @Override
    public void init(ProcessorContext<Bytes, byte[]> ctx) {
      this.ctx = ctx;
      this.store = ctx.getStateStore(storeName);
    }

    @Override
    public void process(Record<Bytes, byte[]> r) {
      BinCodec.Event ev = BinCodec.decode(r.value());
      byte[] v = store.get(r.key());
      long b = 0;
      long t = 0;
      if (v != null) {
        ByteBuffer bb = ByteBuffer.wrap(v);
        b = bb.getLong();
        t = bb.getLong();
      }
      String topic = ctx.recordMetadata().orElseThrow().topic();
      if (topic.equals(builds)) {
        b++;
      } else {
        t++;
      }
      store.put(r.key(), ByteBuffer.allocate(16).putLong(b).putLong(t).array());
      String decision = b > 0 && t > 0 ? "ready" : "waiting";
      ctx.forward(r.withValue(BinCodec.encode(ev.id(), ev.nvr(), decision, b + "/" + t)));
    }
  }
}
