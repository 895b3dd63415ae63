import org.apache.kafka.common.config.ConfigDef;
import java.util.*;
public class Dump {
  static String dflt(ConfigDef.ConfigKey k) {
    if (!k.hasDefault()) return "<NODEFAULT>";
    if (k.defaultValue == null) return "<NULL>";
    return ConfigDef.convertToString(k.defaultValue, k.type);
  }
  static void dump(String kind, Map<String, ConfigDef.ConfigKey> keys, Map<String,String> modes) {
    for (String n : new TreeSet<>(keys.keySet())) {
      ConfigDef.ConfigKey k = keys.get(n);
      String mode = modes == null ? "" : modes.getOrDefault(n, "read-only");
      System.out.println(kind + "\t" + n + "\t" + k.type + "\t" + dflt(k) + "\t" + (k.validator == null ? "" : k.validator.toString().replace("\n"," ")) + "\t" + mode + "\t" + k.internalConfig);
    }
  }
  public static void main(String[] a) throws Exception {
    Map<String, ConfigDef.ConfigKey> b = scala.jdk.javaapi.CollectionConverters.asJava(kafka.server.KafkaConfig$.MODULE$.configKeys());
    dump("BROKER", b, org.apache.kafka.server.config.DynamicBrokerConfig.dynamicConfigUpdateModes());
    dump("TOPIC", org.apache.kafka.storage.internals.log.LogConfig.configKeys(), null);
    for (var e : new TreeMap<>(org.apache.kafka.server.config.ServerTopicConfigSynonyms.TOPIC_CONFIG_SYNONYMS).entrySet())
      System.out.println("SYN\t" + e.getKey() + "\t" + e.getValue());
  }
}
