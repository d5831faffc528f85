package factory2.kstreams;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * The binary codec of factory2's runtime benchmarks (binCodec in processors/bench_test.go):
 * a marker byte 0xF3, then ID, NVR, Kind and Release, each an unsigned varint length and
 * UTF-8 bytes. Both sides decode the same input bytes and encode outputs of the same shape.
 */
final class BinCodec {
  private static final int MARKER = 0xF3;

  private BinCodec() {}

  /** A decoded build event: only the fields the workloads use. */
  record Event(String id, String nvr, String kind, String release) {}

  static Event decode(byte[] b) {
    if (b == null || b.length == 0 || (b[0] & 0xFF) != MARKER) {
      throw new IllegalArgumentException("binCodec: not a binCodec record");
    }
    int[] pos = {1};
    String id = string(b, pos);
    String nvr = string(b, pos);
    String kind = string(b, pos);
    String release = string(b, pos);
    return new Event(id, nvr, kind, release);
  }

  static byte[] encode(String id, String nvr, String kind, String release) {
    ByteArrayOutputStream out = new ByteArrayOutputStream(1 + id.length() + nvr.length() + kind.length() + release.length() + 8);
    out.write(MARKER);
    for (String s : new String[] {id, nvr, kind, release}) {
      byte[] u = s.getBytes(StandardCharsets.UTF_8);
      long n = u.length;
      while (n >= 0x80) {
        out.write((int) (n & 0x7F) | 0x80);
        n >>>= 7;
      }
      out.write((int) n);
      out.write(u, 0, u.length);
    }
    return out.toByteArray();
  }

  private static String string(byte[] b, int[] pos) {
    long n = 0;
    int shift = 0;
    while (true) {
      if (pos[0] >= b.length || shift > 63) {
        throw new IllegalArgumentException("binCodec: truncated record");
      }
      int c = b[pos[0]++] & 0xFF;
      n |= (long) (c & 0x7F) << shift;
      if (c < 0x80) {
        break;
      }
      shift += 7;
    }
    if (n > b.length - pos[0]) {
      throw new IllegalArgumentException("binCodec: truncated record");
    }
    String s = new String(b, pos[0], (int) n, StandardCharsets.UTF_8);
    pos[0] += (int) n;
    return s;
  }
}
