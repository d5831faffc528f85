package factory2.kstreams;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse;

/**
 * The Kafka Streams side of factory2's runtime benchmarks, driven line by line on stdin by
 * processors' BenchmarkKafkaStreams, which times the runs and detects their end itself (it
 * polls the group's committed offsets), so that both sides are measured by the same code.
 * One JVM runs any number of rounds: the first is the cold JVM, the later ones warm.
 *
 * <pre>
 * java -cp 'target/classes:target/lib/*' factory2.kstreams.Bench BOOTSTRAP
 *   (prints "ready")
 * prepare WORKLOAD APPLICATION_ID THREADS STATE_DIR OUTPUT INPUT[,INPUT]
 *   builds the KafkaStreams instance (not timed)       -> "prepared"
 * start          KafkaStreams.start() (the timer runs) -> "started"
 * stop           close, remove the local state         -> "stopped commits=N processed=N"
 * quit, or the end of stdin: close and exit
 * </pre>
 *
 * A command that fails answers "error MESSAGE"; a stream thread that dies prints
 * "failed MESSAGE" whenever it happens. Replies go to stdout, Kafka's logs (warnings and
 * errors) to stderr. WORKLOAD is counter or aggregate (see {@link Workloads}); the
 * application id is also the consumer group whose committed offsets the driver polls.
 */
public final class Bench {
  private final String bootstrap;
  private final PrintStream out;
  private KafkaStreams streams;

  private Bench(String bootstrap, PrintStream out) {
    this.bootstrap = bootstrap;
    this.out = out;
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 1) {
      System.err.println("usage: factory2.kstreams.Bench BOOTSTRAP_SERVERS");
      System.exit(2);
    }
    PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
    new Bench(args[0], out).serve(new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8)));
  }

  private void serve(BufferedReader in) throws Exception {
    reply("ready");
    for (String line; (line = in.readLine()) != null; ) {
      String[] f = line.trim().split("\\s+");
      if (f[0].isEmpty()) {
        continue;
      }
      if (f[0].equals("quit")) {
        break;
      }
      try {
        reply(command(f));
      } catch (Exception e) {
        reply("error " + oneLine(e));
      }
    }
    closeStreams();
  }

  private String command(String[] f) {
    switch (f[0]) {
      case "prepare" -> {
        if (f.length != 7) {
          throw new IllegalArgumentException("prepare WORKLOAD APPLICATION_ID THREADS STATE_DIR OUTPUT INPUT[,INPUT]");
        }
        if (streams != null) {
          throw new IllegalStateException("a run is prepared already; stop it first");
        }
        List<String> inputs = Arrays.asList(f[6].split(","));
        streams = new KafkaStreams(Workloads.topology(f[1], inputs, f[5]), props(f[2], Integer.parseInt(f[3]), f[4]));
        streams.setUncaughtExceptionHandler(e -> {
          reply("failed " + oneLine(e));
          return StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        return "prepared";
      }
      case "start" -> {
        requirePrepared();
        streams.start();
        return "started";
      }
      case "stop" -> {
        requirePrepared();
        long commits = (long) sum("stream-thread-metrics", "commit-total");
        long processed = (long) sum("stream-thread-metrics", "process-total");
        closeStreams();
        return "stopped commits=" + commits + " processed=" + processed;
      }
      default -> throw new IllegalArgumentException("unknown command " + f[0]);
    }
  }

  /**
   * The settings, matched to factory2's runner (processors/runner.go) where the two have
   * the same knob; the rest are Kafka Streams' defaults. deploy/kstreams/README.md has
   * the table.
   */
  private Properties props(String applicationID, int threads, String stateDir) {
    Properties p = new Properties();
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, applicationID);
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
    p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, threads);
    p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
    // factory2: CommitInterval, default 100ms (also Kafka Streams' default under EOS).
    p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
    // Kafka Streams' default: 10 MiB of record cache over all threads.
    p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 10L * 1024 * 1024);
    // factory2: kgo.ProducerLinger(5ms) (Kafka Streams' own default is 100ms).
    p.put(StreamsConfig.producerPrefix(ProducerConfig.LINGER_MS_CONFIG), 5);
    // factory2: franz-go's default batch compression, snappy.
    p.put(StreamsConfig.producerPrefix(ProducerConfig.COMPRESSION_TYPE_CONFIG), "snappy");
    // factory2: MaxPollRecords, default 5000 (Kafka Streams' default is 1000).
    p.put(StreamsConfig.consumerPrefix(ConsumerConfig.MAX_POLL_RECORDS_CONFIG), 5000);
    // factory2: kgo.FetchIsolationLevel(ReadCommitted()) (exactly_once_v2 sets it too).
    p.put(StreamsConfig.consumerPrefix(ConsumerConfig.ISOLATION_LEVEL_CONFIG), "read_committed");
    // factory2: kgo.FetchMaxWait(CommitInterval), 100ms (the consumer's default is 500ms).
    p.put(StreamsConfig.consumerPrefix(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG), 100);
    // A fresh application id has no committed offsets: read the inputs from their start.
    p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
    // No global tables here; set only to silence the warning of its default on every run.
    p.put(StreamsConfig.PROCESSING_EXCEPTION_HANDLER_GLOBAL_ENABLED_CONFIG, true);
    return p;
  }

  private void requirePrepared() {
    if (streams == null) {
      throw new IllegalStateException("no run is prepared");
    }
  }

  /** sum adds up the metric name of group over every thread. */
  private double sum(String group, String name) {
    double total = 0;
    for (Map.Entry<MetricName, ? extends Metric> e : streams.metrics().entrySet()) {
      if (e.getKey().group().equals(group) && e.getKey().name().equals(name)
          && e.getValue().metricValue() instanceof Number n) {
        total += n.doubleValue();
      }
    }
    return total;
  }

  private void closeStreams() {
    if (streams == null) {
      return;
    }
    try {
      if (!streams.close(Duration.ofSeconds(60))) {
        reply("failed KafkaStreams.close did not finish within 60s");
      }
      streams.cleanUp();
    } finally {
      streams = null;
    }
  }

  private synchronized void reply(String line) {
    out.println(line);
  }

  private static String oneLine(Throwable e) {
    StringBuilder sb = new StringBuilder();
    for (Throwable c = e; c != null; c = c.getCause()) {
      if (sb.length() > 0) {
        sb.append(": ");
      }
      sb.append(c.getClass().getSimpleName()).append(' ').append(c.getMessage());
    }
    return sb.toString().replace('\n', ' ');
  }
}
