// DynamoDB Local has no bind-address option and Jetty listens on every interface by default.
// This launcher builds the server exactly as DynamoDBLocal.jar does, then pins its connector to 127.0.0.1.
// Once it listens, it writes the port it holds to the file -Dlocal.portFile names (aws_engines.ManagedProcess waits
// for it). With `-port 0` the port is the kernel's choice, never one another process could take first; DynamoDB Local
// refuses 0 itself, so it is given a placeholder and the connector is told 0.
// aws_engines.compiled_launcher compiles it once (java can also run it as a source file, compiling it at each start).
import java.lang.reflect.Field;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

public class LoopbackDynamoDBLocal {
    public static void main(String[] args) throws Exception {
        boolean anyPort = false;
        for (int i = 0; i + 1 < args.length; i++) {
            if (args[i].equals("-port") && args[i + 1].equals("0")) {
                args[i + 1] = "8000";
                anyPort = true;
            }
        }
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
        Field field = DynamoDBProxyServer.class.getDeclaredField("server");
        field.setAccessible(true);
        Server server = (Server) field.get(proxy);
        ServerConnector listening = null;
        for (Connector connector : server.getConnectors()) {
            if (connector instanceof ServerConnector serverConnector) {
                serverConnector.setHost("127.0.0.1");
                if (anyPort) {
                    serverConnector.setPort(0);
                }
                listening = serverConnector;
            }
        }
        proxy.start();
        String portFile = System.getProperty("local.portFile");
        if (portFile != null && listening != null) {
            Path target = Path.of(portFile);
            Path partial = Path.of(portFile + ".partial");
            Files.writeString(partial, Integer.toString(listening.getLocalPort()));
            Files.move(partial, target, StandardCopyOption.ATOMIC_MOVE);
        }
        proxy.join();
    }
}
