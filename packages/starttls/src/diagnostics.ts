import diagnostics_channel from 'node:diagnostics_channel';
import { debuglog } from 'node:util';

/** Message of `ucspi:starttls:line`: one line sent or received during a dialogue (passwords redacted). */
export interface LineMessage {
  protocol: string;
  side: 'client' | 'server';
  direction: 'sent' | 'received';
  /** The line without its line end; for binary protocols a short hex rendering. */
  line: string;
  /** True once the dialogue runs over TLS (the after-TLS step). */
  tls: boolean;
}

/** Message of `ucspi:starttls:upgrade`: the go-ahead was exchanged, the socket goes to the handshake. */
export interface UpgradeMessage {
  protocol: string;
  side: 'client' | 'server';
}

/** Message of `ucspi:starttls:done` (TLS socket handed back) and `ucspi:starttls:error` (with code and message). */
export interface OutcomeMessage {
  protocol: string;
  side: 'client' | 'server';
  code?: string;
  message?: string;
}

/** The diagnostics channels this package publishes on. Subscribe with `diagnostics_channel.subscribe(name, fn)`. */
export const channels = {
  /** Every line (or binary message) sent and received: {@link LineMessage}. */
  line: diagnostics_channel.channel('ucspi:starttls:line'),
  /** The plaintext part is over, the handshake starts: {@link UpgradeMessage}. */
  upgrade: diagnostics_channel.channel('ucspi:starttls:upgrade'),
  /** The TLS socket is handed back: {@link OutcomeMessage}. */
  done: diagnostics_channel.channel('ucspi:starttls:done'),
  /** The dialogue failed: {@link OutcomeMessage} with `code` and `message`. */
  error: diagnostics_channel.channel('ucspi:starttls:error'),
} as const;

// NODE_DEBUG=ucspi prints the same events on stderr.
const debug = debuglog('ucspi');

// Credentials a client may send to a server side before TLS (which refuses them): IMAP LOGIN and
// AUTHENTICATE, POP3 PASS and AUTH, SMTP AUTH. Their arguments never reach a subscriber.
const SECRETS: Array<[RegExp, string]> = [
  [/^(\S+\s+LOGIN\s+\S+\s+).*$/i, '$1<redacted>'],
  [/^(\S+\s+AUTHENTICATE\s+\S+\s+).*$/i, '$1<redacted>'],
  [/^(PASS\s+).*$/i, '$1<redacted>'],
  [/^(APOP\s+\S+\s+).*$/i, '$1<redacted>'],
  [/^(AUTH\s+\S+\s+).*$/i, '$1<redacted>'],
];

/** A received command line with its credentials replaced by `<redacted>`. */
export function redactCommand(line: string): string {
  for (const [re, by] of SECRETS) if (re.test(line)) return line.replace(re, by);
  return line;
}

/** Publishes a line event (and prints it under NODE_DEBUG=ucspi). */
export function publishLine(message: LineMessage): void {
  if (message.side === 'server' && message.direction === 'received') {
    message = { ...message, line: redactCommand(message.line) };
  }
  if (channels.line.hasSubscribers) channels.line.publish(message);
  debug(
    'starttls %s %s %s %s%s',
    message.protocol,
    message.side,
    message.direction === 'sent' ? '>' : '<',
    message.tls ? '(tls) ' : '',
    JSON.stringify(message.line),
  );
}

/** Publishes an upgrade, done or error event. */
export function publishOutcome(kind: 'upgrade' | 'done' | 'error', message: OutcomeMessage): void {
  const channel = channels[kind];
  if (channel.hasSubscribers) channel.publish(message);
  debug(
    'starttls %s %s %s%s',
    message.protocol,
    message.side,
    kind,
    message.code ? ` ${message.code}: ${message.message}` : '',
  );
}
