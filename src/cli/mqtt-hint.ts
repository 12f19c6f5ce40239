/** The printed MQTT example of `modelguard up`: one shell line with Debian's mosquitto clients. */

/**
 * Subscribes for one reply, then publishes an MQTT 3.1.1 request that names it in `replyTo`; the
 * device logs in to the embedded broker as its app (username = app, password = key).
 */
export function mqttTryLine(url: string, app: string, key: string): string {
  const u = new URL(url);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const conn = `-h ${host} -p ${u.port || '1883'} -u ${app} -P '${key}'`;
  const reply = `modelguard/v1/${app}/replies/1`; // the embedded broker answers only on the app's reply topics
  const body = `{"replyTo":"${reply}","id":"1","inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}`;
  return `mosquitto_sub ${conn} -t ${reply} -C 1 & sleep 0.3; mosquitto_pub ${conn} -t modelguard/v1/infer/iris -m '${body}'; wait`;
}
