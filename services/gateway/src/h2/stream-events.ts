// biome-ignore lint/suspicious/noExplicitAny: the listener type of node's EventEmitter
type Listener = (...args: any[]) => void;
type OnceWrapper = Listener & { listener?: Listener };

/**
 * The event API of an HTTP/2 stream (`on`, `once`, `off`, `emit`, `listenerCount`), as node's
 * EventEmitter behaves for it: listeners of an event run in the order they were added, on a
 * snapshot taken when the event is emitted; `off` removes the latest matching listener (or
 * `once` wrapper); an 'error' nobody listens for is thrown. Without EventEmitter's `_events`
 * dictionary: a call's dozen listeners sit in one flat array of [event, listener] pairs, which costs
 * less to fill and to search than a dictionary-mode object per stream.
 */
export class StreamEvents {
  private listenerPairs: Array<string | symbol | Listener> = [];

  on(event: string | symbol, listener: Listener): this {
    this.listenerPairs.push(event, listener);
    return this;
  }

  addListener(event: string | symbol, listener: Listener): this {
    return this.on(event, listener);
  }

  once(event: string | symbol, listener: Listener): this {
    const wrapper: OnceWrapper = (...args) => {
      this.removeListener(event, wrapper);
      listener.apply(this, args);
    };
    wrapper.listener = listener;
    return this.on(event, wrapper);
  }

  removeListener(event: string | symbol, listener: Listener): this {
    const pairs = this.listenerPairs;
    for (let i = pairs.length - 2; i >= 0; i -= 2) {
      const fn = pairs[i + 1] as OnceWrapper;
      if (pairs[i] === event && (fn === listener || fn.listener === listener)) {
        pairs.splice(i, 2);
        break;
      }
    }
    return this;
  }

  off(event: string | symbol, listener: Listener): this {
    return this.removeListener(event, listener);
  }

  removeAllListeners(event?: string | symbol): this {
    if (event === undefined) {
      this.listenerPairs = [];
      return this;
    }
    const pairs = this.listenerPairs;
    let kept = 0;
    for (let i = 0; i < pairs.length; i += 2) {
      if (pairs[i] === event) continue;
      pairs[kept++] = pairs[i] as string | symbol;
      pairs[kept++] = pairs[i + 1] as Listener;
    }
    pairs.length = kept;
    return this;
  }

  listenerCount(event: string | symbol): number {
    const pairs = this.listenerPairs;
    let count = 0;
    for (let i = 0; i < pairs.length; i += 2) if (pairs[i] === event) count++;
    return count;
  }

  // biome-ignore lint/suspicious/noExplicitAny: the arguments of node's EventEmitter
  emit(event: string | symbol, ...args: any[]): boolean {
    const pairs = this.listenerPairs;
    let first: Listener | undefined;
    let more: Listener[] | undefined;
    for (let i = 0; i < pairs.length; i += 2) {
      if (pairs[i] !== event) continue;
      const fn = pairs[i + 1] as Listener;
      if (first === undefined) first = fn;
      else if (more === undefined) more = [first, fn];
      else more.push(fn);
    }
    if (first === undefined) {
      if (event === "error") throw args[0] instanceof Error ? args[0] : new Error(`unhandled 'error' event (${String(args[0])})`);
      return false;
    }
    if (more === undefined) {
      first.apply(this, args);
      return true;
    }
    for (const fn of more) fn.apply(this, args);
    return true;
  }
}
