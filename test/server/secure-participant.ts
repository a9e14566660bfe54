/**
 * A raw participant that runs the participant side of secure aggregation (client/secure-round.ts,
 * real WebCrypto) with knowledge the test gives it instead of a model's, and can drop out at any
 * step: for tests of the coordinator's secure rounds without tfjs.
 */
import { clientMessages, decodeMessage, encodeMessage, PROTOCOL_VERSION, readReply, replyMessages, serverMessages, type ServerMessage, type SessionInfo } from '../../protocol/index.js';
import { SecureParticipant } from '../../client/secure-round.js';
import type { Target } from '../../client/procedures/index.js';
import { RawParticipant } from './raw-participant.js';

/** Where a member drops out: on receiving the roster (before its shares), the routed shares (before uploading), the unmask request (before revealing). */
export type DropPoint = 'before-shares' | 'before-upload' | 'before-reveal';

export class SecureRawParticipant extends RawParticipant {
  readonly sums: ServerMessage<'secure-sum'>[] = [];
  /** The target this participant built from each round's sum (null: no peer). */
  readonly secureTargets: Array<Target | null> = [];
  readonly errors: unknown[] = [];
  info: SessionInfo | undefined;
  private secure: SecureParticipant | undefined;
  /** Messages wait for the join's answer: the round can arrive before it is handled. */
  private chain: Promise<unknown>;
  private joinedInfo!: (info: SessionInfo) => void;

  constructor(
    url: string,
    id: string,
    /** The knowledge this member shares each round, and its label counts (class-logits). */
    private readonly knowledge: (round: number) => { values: Float32Array; labelCounts?: number[] },
    private readonly options: { dropAt?: DropPoint; dropRound?: number; distiller?: boolean; report?: boolean } = {},
  ) {
    super(url, id, `secret-${id}`);
    this.chain = new Promise<SessionInfo>((resolve) => (this.joinedInfo = resolve));
    const on = (event: 'round' | 'secure-roster' | 'secure-routed' | 'secure-unmask' | 'secure-sum', handle: (bytes: Uint8Array) => Promise<void>) =>
      this.socket.on(event, (bytes: Uint8Array) => (this.chain = this.chain.then(() => handle(bytes)).catch((error: unknown) => void this.errors.push(error))));
    on('round', async (bytes) => {
      const round = decodeMessage(serverMessages.round, bytes);
      // A distiller only learns; a member not sampled sits the round out (no keys, no shares, no upload).
      if (this.options.distiller || round.sampled === false) return;
      await this.secureSide().begin(round, { shape: [], ...this.knowledge(round.round) });
    });
    on('secure-roster', async (bytes) => {
      const message = decodeMessage(serverMessages['secure-roster'], bytes);
      if (this.drops('before-shares', message.round)) return this.close();
      await this.secureSide().roster(message);
    });
    on('secure-routed', async (bytes) => {
      const message = decodeMessage(serverMessages['secure-routed'], bytes);
      if (this.drops('before-upload', message.round)) return this.close();
      await this.secureSide().routed(message);
    });
    on('secure-unmask', async (bytes) => {
      const message = decodeMessage(serverMessages['secure-unmask'], bytes);
      if (this.drops('before-reveal', message.round)) return this.close();
      await this.secureSide().unmask(message);
    });
    on('secure-sum', async (bytes) => {
      const message = decodeMessage(serverMessages['secure-sum'], bytes);
      this.sums.push(message);
      const rows = this.rounds.at(-1)!.referenceIds.length;
      this.secureTargets.push(this.secureSide().target(message, this.info!.knowledge as never, rows, this.options.distiller === true));
      if (this.options.report !== false) await this.report(message.round);
    });
  }

  override async join(session = 'test', role: 'participant' | 'distiller' = this.options.distiller ? 'distiller' : 'participant') {
    const joined = await super.join(session, role);
    this.info = joined.info;
    this.joinedInfo(joined.info);
    return joined;
  }

  private drops(point: DropPoint, round: number): boolean {
    return this.options.dropAt === point && (this.options.dropRound ?? 1) === round;
  }

  private secureSide(): SecureParticipant {
    this.secure ??= new SecureParticipant(this.id, this.info!, async (event, message, round) => {
      const envelope = encodeMessage(clientMessages[event], { v: PROTOCOL_VERSION, session: this.info!.session, round, participant: this.id, ...message } as never);
      readReply(replyMessages.ack, await this.socket.timeout(5000).emitWithAck(event as 'upload', envelope));
    });
    return this.secure;
  }
}
