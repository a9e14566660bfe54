/**
 * A token bucket per connection: `burst` messages at once, refilled at `messagesPerSecond`.
 * A participant sends a handful of messages a round (an asynchronous one a few a second); a
 * connection far past that is broken or hostile, and each message it sends over the limit is
 * refused before it is decoded, so a flood costs the coordinator almost nothing.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly messagesPerSecond: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.last = now();
  }

  /** Takes one token if there is one. */
  take(): boolean {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.messagesPerSecond);
    this.last = t;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
