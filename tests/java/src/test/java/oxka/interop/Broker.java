package oxka.interop;

import java.io.File;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;

/**
 * The broker under test. With OXKA_JAVA_BOOTSTRAP set, that running broker
 * is used as is (e.g. the reference Kafka of tests/kafka-reference/run.sh,
 * to check the tests themselves); otherwise the oxka binary in OXKA_BIN is
 * started on a free port with a fresh data dir and stopped with SIGTERM.
 */
final class Broker implements AutoCloseable {
    private static final Duration START_TIMEOUT = Duration.ofSeconds(60);

    private final Process process;
    private final Path dataDir;
    final String bootstrap;

    private Broker(Process process, Path dataDir, String bootstrap) {
        this.process = process;
        this.dataDir = dataDir;
        this.bootstrap = bootstrap;
    }

    static Broker start() throws Exception {
        String external = System.getenv("OXKA_JAVA_BOOTSTRAP");
        if (external != null && !external.isEmpty()) {
            return new Broker(null, null, external);
        }
        String bin = System.getenv("OXKA_BIN");
        if (bin == null || bin.isEmpty() || !new File(bin).canExecute()) {
            throw new IllegalStateException("set OXKA_BIN to the oxka binary (or OXKA_JAVA_BOOTSTRAP to a running broker); got " + bin);
        }
        int port = freePort();
        Path dir = Files.createTempDirectory("oxka-java-");
        Path log = dir.resolve("broker.log");
        Process p = new ProcessBuilder(bin, "broker", "--listen", "127.0.0.1:" + port,
                "--data-dir", dir.resolve("data").toString(), "--log-level", "warn")
                .redirectErrorStream(true)
                .redirectOutput(log.toFile())
                .start();
        Broker broker = new Broker(p, dir, "127.0.0.1:" + port);
        broker.awaitReady(port, log);
        return broker;
    }

    private void awaitReady(int port, Path log) throws Exception {
        long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) {
                throw new IllegalStateException("oxka exited with " + process.exitValue() + ": " + Files.readString(log));
            }
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress("127.0.0.1", port), 500);
                break;
            } catch (IOException notYet) {
                Thread.sleep(50);
            }
        }
        try (Admin admin = admin()) {
            admin.describeCluster().nodes().get(START_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        }
    }

    Admin admin() {
        return Admin.create(props(Map.of(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30000)));
    }

    /** Client properties with the bootstrap address and the given extras. */
    Properties props(Map<String, Object> extra) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.putAll(extra);
        return p;
    }

    static String uniq(String what) {
        return "java-" + what + "-" + UUID.randomUUID().toString().substring(0, 8);
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    @Override
    public void close() throws Exception {
        if (process == null) {
            return;
        }
        process.destroy(); // SIGTERM: oxka's orderly shutdown
        if (!process.waitFor(30, TimeUnit.SECONDS)) {
            process.destroyForcibly().waitFor();
        }
        try (Stream<Path> files = Files.walk(dataDir)) {
            files.sorted(Comparator.reverseOrder()).map(Path::toFile).forEach(File::delete);
        }
    }
}
