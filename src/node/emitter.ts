/** Listener for one event type. */
export type Listener<T> = (event: T) => void;

/**
 * A minimal typed event emitter. A listener that throws is reported to `onListenerError`
 * and does not stop the others: an interface bug must not break the relay path that
 * emitted the event. Listener lists are replaced, never mutated, so (un)subscribing
 * during an emit is safe and an emit is a plain loop over an array.
 */
export class Emitter<Events extends object> {
  private readonly listeners = new Map<keyof Events, ReadonlyArray<Listener<never>>>();

  constructor(private readonly onListenerError: (error: unknown) => void = () => {}) {}

  /** Subscribes; returns the function that unsubscribes. */
  on<K extends keyof Events>(type: K, listener: Listener<Events[K]>): () => void {
    const entry = listener as Listener<never>;
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), entry]);
    return () => {
      const rest = (this.listeners.get(type) ?? []).filter((l) => l !== entry);
      if (rest.length > 0) this.listeners.set(type, rest);
      else this.listeners.delete(type);
    };
  }

  emit<K extends keyof Events>(type: K, event: Events[K]): void {
    const list = this.listeners.get(type) as ReadonlyArray<Listener<Events[K]>> | undefined;
    if (list === undefined) return;
    for (let i = 0; i < list.length; i++) {
      try {
        (list[i] as Listener<Events[K]>)(event);
      } catch (error) {
        this.onListenerError(error);
      }
    }
  }
}
