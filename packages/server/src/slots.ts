// Slots: -c (connections at once) and the per-address limit (sslserver's MAXCONIP).

/** A snapshot of the slots, for status lines and tests. */
export interface SlotStatus {
  /** Connections holding a slot. */
  active: number;
  limit: number;
  /** Connections per remote address that hold an address slot. */
  perIp: ReadonlyMap<string, number>;
  /** Accepted connections waiting for a slot. */
  waiting: number;
}

/**
 * One connection's hold on the slots. Released exactly once: a second release is a bug of the
 * caller and throws, so that a test sees it instead of a count that drifts.
 */
export interface Slot {
  /**
   * Count this connection against its remote address; false (nothing counted) when `max` (> 0)
   * connections from it already hold one.
   */
  claimAddress(ip: string, max: number): boolean;
  /** Give the slot (and the address slot, if claimed) back. */
  release(): void;
}

/** The counters behind the slots; the engine owns one. */
export class Slots {
  #active = 0;
  readonly #perIp = new Map<string, number>();

  constructor(readonly limit: number) {}

  /** Whether every slot is taken. */
  get full(): boolean {
    return this.#active >= this.limit;
  }

  get active(): number {
    return this.#active;
  }

  /** Connections from `ip` that hold an address slot. */
  countFor(ip: string): number {
    return this.#perIp.get(ip) ?? 0;
  }

  /** A snapshot; `waiting` is the caller's queue length. */
  status(waiting = 0): SlotStatus {
    return { active: this.#active, limit: this.limit, perIp: new Map(this.#perIp), waiting };
  }

  /** Take a slot (the caller checked `full`; -c is never exceeded by more than the caller allows). */
  acquire(): Slot {
    this.#active++;
    let address: string | undefined;
    let released = false;
    return {
      claimAddress: (ip, max) => {
        if (address !== undefined) throw new Error(`address slot claimed twice for ${ip}`);
        const n = this.#perIp.get(ip) ?? 0;
        if (max > 0 && n >= max) return false;
        this.#perIp.set(ip, n + 1);
        address = ip;
        return true;
      },
      release: () => {
        if (released) throw new Error('slot released twice');
        released = true;
        this.#active--;
        if (address !== undefined) {
          const n = (this.#perIp.get(address) ?? 1) - 1;
          if (n > 0) this.#perIp.set(address, n);
          else this.#perIp.delete(address);
        }
      },
    };
  }
}
