package example;

import io.lettuce.core.ClientOptions;
import io.lettuce.core.ReadFrom;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisCommandExecutionException;
import io.lettuce.core.RedisConnectionException;
import io.lettuce.core.RedisCommandTimeoutException;
import io.lettuce.core.RedisURI;
import io.lettuce.core.SocketOptions;
import io.lettuce.core.SslOptions;
import io.lettuce.core.TimeoutOptions;
import io.lettuce.core.api.sync.RedisCommands;
import io.lettuce.core.codec.StringCodec;
import io.lettuce.core.masterreplica.MasterReplica;
import io.lettuce.core.masterreplica.StatefulRedisMasterReplicaConnection;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

/**
 * A Lettuce application of redis-sentinel-ha: Sentinel discovery, the {@code app} user's
 * credentials on Sentinel and Redis, writes to the master, reads from replicas, and the
 * same timeouts and retries as the Python and TypeScript examples (see the README).
 *
 * <p>Environment: REDIS_SENTINELS (host:port,...; default redis-sentinel:26379),
 * REDIS_MASTER_NAME (mymaster), REDIS_USERNAME (app), REDIS_PASSWORD_FILE or
 * REDIS_PASSWORD, REDIS_TLS_CA (a CA file: connect with TLS).
 */
public final class SentinelClient {
    static final Duration CONNECT_TIMEOUT = Duration.ofMillis(250);
    static final Duration COMMAND_TIMEOUT = Duration.ofSeconds(1);
    static final Duration RETRY_DELAY = Duration.ofMillis(50);
    static final Duration RETRY_FOR = Duration.ofSeconds(30);

    public static void main(String[] args) throws Exception {
        String username = env("REDIS_USERNAME", "app");
        String passwordFile = System.getenv("REDIS_PASSWORD_FILE");
        char[] password = (passwordFile != null ? Files.readString(Path.of(passwordFile)).trim() : System.getenv("REDIS_PASSWORD")).toCharArray();
        String ca = System.getenv("REDIS_TLS_CA");

        // The Sentinels: each one's URI carries the credentials (the app user logs in to
        // Sentinel too); the builder's own credentials are for the Redis nodes.
        RedisURI.Builder uri = null;
        for (String address : env("REDIS_SENTINELS", "redis-sentinel:26379").split(",")) {
            String host = address.substring(0, address.lastIndexOf(':'));
            int port = Integer.parseInt(address.substring(address.lastIndexOf(':') + 1));
            RedisURI sentinel = RedisURI.Builder.redis(host, port).withAuthentication(username, password).withSsl(ca != null).build();
            uri = uri == null ? RedisURI.Builder.sentinel(host, port, env("REDIS_MASTER_NAME", "mymaster")) : uri;
            uri.withSentinel(sentinel);
        }
        uri.withAuthentication(username, password).withSsl(ca != null).withTimeout(COMMAND_TIMEOUT);

        RedisClient client = RedisClient.create();
        ClientOptions.Builder options = ClientOptions.builder()
            .socketOptions(SocketOptions.builder().connectTimeout(CONNECT_TIMEOUT).build())
            .timeoutOptions(TimeoutOptions.enabled(COMMAND_TIMEOUT))
            .autoReconnect(true);
        if (ca != null) options.sslOptions(SslOptions.builder().trustManager(new File(ca)).build());
        client.setOptions(options.build());

        StatefulRedisMasterReplicaConnection<String, String> connection = MasterReplica.connect(client, StringCodec.UTF8, uri.build());
        // Reads may go to a replica (which can lag a little); writes always go to the master.
        connection.setReadFrom(ReadFrom.REPLICA_PREFERRED);
        RedisCommands<String, String> redis = connection.sync();

        for (int i = 0; i < 1000; i++) {
            String key = "example:java:" + i;
            String value = Integer.toString(i);
            // SET is idempotent, so repeating it after an unanswered attempt is safe.
            withRetries(() -> redis.set(key, value));
            System.out.println(key + " = " + redis.get(key));
            Thread.sleep(10);
        }
        connection.close();
        client.shutdown();
    }

    interface Command<T> { T run(); }

    /** Runs the command until it succeeds or RETRY_FOR has passed (a failover takes downAfter + ~1.5 s). */
    static <T> T withRetries(Command<T> command) throws InterruptedException {
        long deadline = System.nanoTime() + RETRY_FOR.toNanos();
        while (true) {
            try {
                return command.run();
            } catch (RedisConnectionException | RedisCommandTimeoutException e) {
                if (System.nanoTime() >= deadline) throw e;
            } catch (RedisCommandExecutionException e) {
                String m = String.valueOf(e.getMessage());
                if (!(m.startsWith("READONLY") || m.startsWith("NOREPLICAS") || m.startsWith("LOADING") || m.startsWith("MASTERDOWN"))
                    || System.nanoTime() >= deadline) throw e;
            }
            Thread.sleep(RETRY_DELAY.toMillis());
        }
    }

    static String env(String name, String fallback) {
        String value = System.getenv(name);
        return value == null || value.isEmpty() ? fallback : value;
    }
}
