package musicgraph.testserver;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CountDownLatch;

import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;

/**
 * A real Neo4j Community server for musicgraph's tests: Bolt on 127.0.0.1, auth off, small memory.
 *
 * <p>Usage: {@code Neo4jTestServer <home-dir> <bolt-port>}, or the system properties
 * {@code neo4j.home} and {@code neo4j.port}. Prints {@code READY bolt://127.0.0.1:<port>} on stdout
 * once the default database answers a query, and shuts the database down cleanly on SIGTERM.
 */
public final class Neo4jTestServer {

    public static final String READY = "READY";

    /**
     * Small-machine settings: the page cache defaults to half of RAM, tx logs to 250 MB files.
     * The store of the 1M-listen import benchmark outgrows 128m of page cache; 512m keeps it
     * cached, so the benchmark measures Cypher rather than page faults.
     */
    private static final List<String> SETTINGS = List.of(
            "server.memory.pagecache.size=512m",
            "dbms.memory.transaction.total.max=512m",
            "server.bolt.tls_level=DISABLED",
            "dbms.usage_report.enabled=false",
            "db.tx_log.preallocate=false");

    private Neo4jTestServer() {}

    public static void main(String[] args) throws Exception {
        String home = args.length > 0 ? args[0] : System.getProperty("neo4j.home");
        String portText = args.length > 1 ? args[1] : System.getProperty("neo4j.port");
        if (home == null || portText == null) {
            System.err.println("usage: Neo4jTestServer <home-dir> <bolt-port>"
                    + " (or -Dneo4j.home=... -Dneo4j.port=...)");
            System.exit(2);
            return;
        }
        int port;
        try {
            port = Integer.parseInt(portText.trim());
        } catch (NumberFormatException e) {
            System.err.println("bolt port must be a number, got: " + portText);
            System.exit(2);
            return;
        }
        Path homePath = Path.of(home).toAbsolutePath();
        Files.createDirectories(homePath);

        // Settings by name go through a properties file: the builder has no raw-string setter, and
        // strict validation rejects a misspelt name at start-up, which is what we want.
        Path conf = homePath.resolve("neo4j-test-server.conf");
        Files.writeString(conf, String.join("\n", SETTINGS) + "\n", StandardCharsets.UTF_8);

        long started = System.nanoTime();
        DatabaseManagementService dbms = new DatabaseManagementServiceBuilder(homePath)
                .loadPropertiesFromFile(conf)
                .setConfig(BoltConnector.enabled, true)
                .setConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", port))
                .setConfig(GraphDatabaseSettings.auth_enabled, false)
                .build();

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.out.println("STOPPING");
            System.out.flush();
            try {
                dbms.shutdown();
            } finally {
                stopped.countDown();
            }
        }, "neo4j-test-server-shutdown"));

        GraphDatabaseService db = dbms.database(GraphDatabaseSettings.DEFAULT_DATABASE_NAME);
        waitUntilAvailable(db, Duration.ofSeconds(120));
        long millis = (System.nanoTime() - started) / 1_000_000;
        System.out.println(READY + " bolt://127.0.0.1:" + port + " (started in " + millis + " ms)");
        System.out.flush();

        // Keep the JVM alive until the shutdown hook has run.
        stopped.await();
    }

    private static void waitUntilAvailable(GraphDatabaseService db, Duration timeout)
            throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        RuntimeException last = null;
        while (System.nanoTime() < deadline) {
            if (db.isAvailable(1_000)) {
                try {
                    db.executeTransactionally("RETURN 1");
                    return;
                } catch (RuntimeException e) {
                    last = e;
                }
            }
            Thread.sleep(100);
        }
        throw new IllegalStateException("database 'neo4j' did not become available within "
                + timeout.toSeconds() + " s", last);
    }
}
