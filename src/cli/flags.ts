/**
 * No silent flags: a flag that cannot take effect with the others given is refused, saying what it
 * needs, instead of being ignored. Checks that need the configuration (a flag that overrides a
 * Gateway field the configuration does not have) run where the configuration is read.
 */
import type { Command } from 'commander';

/** True when the user typed the option (not a default, not from the environment). */
export function typed(cmd: Command, option: string): boolean {
  return cmd.getOptionValueSource(option) === 'cli';
}

/** Each rule: the flag, whether it can take effect, and what it needs when it cannot. */
export interface FlagRule {
  readonly option: string;
  readonly flag: string;
  readonly works: boolean;
  readonly needs: string;
}

/** Throws for the first typed flag that would do nothing. */
export function refuseSilentFlags(cmd: Command, rules: readonly FlagRule[]): void {
  for (const r of rules) {
    if (typed(cmd, r.option) && !r.works) throw new Error(`${r.flag} would do nothing here: ${r.needs}`);
  }
}

/** `--mqtt URL` moves the MQTT endpoint of Gateway.spec.mqtt; without one there is nothing to move. */
export function mqttFlagNeedsGateway(command: string, hasMqtt: boolean, url: string | undefined): void {
  if (url === undefined || hasMqtt) return;
  throw new Error(
    `--mqtt ${url} needs Gateway.spec.mqtt in the configuration: the flag only moves where MQTT connects or listens, ` +
      `and this configuration has no MQTT. Add to the Gateway \`mqtt: { url: "${url}", embedded: true }\` ` +
      `(embedded: false to use an external broker such as mosquitto), then run \`${command}\` again; or drop --mqtt`,
  );
}
