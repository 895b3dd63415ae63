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
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;

/**
 * The broker under test, by the first of these that is set:
 * OXKA_JAVA_BOOTSTRAP (a running broker, used as is; no restarts),
 * OXKA_JAVA_BROKER_CMD (a shell command with {port} and {data_dir}, as the
 * conformance suite's --broker-cmd, e.g. the reference Kafka of
 * tests/kafka-reference/run.sh), or OXKA_BIN (the oxka binary). A started
 * broker gets a free port and a fresh data dir, and SIGTERM at the end.
 */
final class Broker implements AutoCloseable {
    private static final Duration START_TIMEOUT = Duration.ofSeconds(60);

    private final List<String> command;
    private final Path dir;
    private final int port;
    private Process process;
    final String bootstrap;

    private Broker(List<String> command, Path dir, int port, String bootstrap) {
        this.command = command;
        this.dir = dir;
        this.port = port;
        this.bootstrap = bootstrap;
    }

    static Broker start() throws Exception {
        String external = System.getenv("OXKA_JAVA_BOOTSTRAP");
        if (external != null && !external.isEmpty()) {
            return new Broker(null, null, -1, external);
        }
        int port = freePort();
        Path dir = Files.createTempDirectory("oxka-java-");
        Path data = dir.resolve("data");
        Files.createDirectories(data);
        String cmd = System.getenv("OXKA_JAVA_BROKER_CMD");
        List<String> command;
        if (cmd != null && !cmd.isEmpty()) {
            command = List.of("bash", "-c", "exec " + cmd.replace("{port}", Integer.toString(port))
                    .replace("{data_dir}", data.toString()));
        } else {
            String bin = System.getenv("OXKA_BIN");
            if (bin == null || bin.isEmpty() || !new File(bin).canExecute()) {
                throw new IllegalStateException("set OXKA_BIN to the oxka binary (or OXKA_JAVA_BROKER_CMD,"
                        + " or OXKA_JAVA_BOOTSTRAP to a running broker); got " + bin);
            }
            command = List.of(bin, "broker", "--listen", "127.0.0.1:" + port,
                    "--data-dir", data.toString(), "--log-level", "warn");
        }
        Broker broker = new Broker(command, dir, port, "127.0.0.1:" + port);
        broker.launch();
        return broker;
    }

    /** Whether this harness owns the process (and so can restart it). */
    boolean restartable() {
        return command != null;
    }

    /** SIGTERM, wait, start again on the same port and data dir; returns once it answers. */
    void restart() throws Exception {
        stopProcess();
        launch();
    }

    private void launch() throws Exception {
        Path log = dir.resolve("broker.log");
        process = new ProcessBuilder(command)
                .directory(dir.resolve("data").toFile())
                .redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
                .start();
        long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) {
                throw new IllegalStateException("the broker exited with " + process.exitValue() + ": " + Files.readString(log));
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

    private void stopProcess() throws InterruptedException {
        process.destroy(); // SIGTERM: the broker's orderly shutdown
        if (!process.waitFor(30, TimeUnit.SECONDS)) {
            process.destroyForcibly().waitFor();
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
        stopProcess();
        try (Stream<Path> files = Files.walk(dir)) {
            files.sorted(Comparator.reverseOrder()).map(Path::toFile).forEach(File::delete);
        }
    }
}
