/**
 * Concerts this process has just heard are not selling (sold out or cancelled). During a burst
 * almost every request is a loser: answering those here, without a round trip to the concert
 * entity, keeps the entity's mailbox for buyers who can still win. An entry lasts `ttl`
 * (another process may reopen the concert) and a PUT through this process clears it at once.
 */
import { Clock, Config, Duration, Effect } from "effect"

export type Closed = "SoldOut" | "Cancelled"

export class ClosedSales extends Effect.Service<ClosedSales>()("ClosedSales", {
  effect: Effect.gen(function*() {
    const ttl = yield* Config.duration("CLOSED_SALES_TTL").pipe(Config.withDefault("2 seconds"))
    const ttlMillis = Duration.toMillis(ttl)
    const closed = new Map<string, { readonly reason: Closed; readonly until: number }>()
    /** Why `concertId` is not selling at `now`, if this process heard so lately. */
    const at = (concertId: string, now: number): Closed | undefined => {
      const entry = closed.get(concertId)
      if (entry === undefined) return undefined
      if (entry.until > now) return entry.reason
      closed.delete(concertId)
      return undefined
    }
    /** `reopensAt`: when held seats may come back; the entry lasts no longer than that. */
    const note = (concertId: string, reason: Closed, now: number, reopensAt?: number): void => {
      closed.set(concertId, { reason, until: Math.min(now + ttlMillis, reopensAt ?? Infinity) })
    }
    return {
      get: (concertId: string): Effect.Effect<Closed | undefined> =>
        Effect.suspend(() =>
          closed.has(concertId) ? Effect.map(Clock.currentTimeMillis, (now) => at(concertId, now)) : Effect.succeed(undefined)
        ),
      at,
      remember: (concertId: string, reason: Closed, reopensAt?: number): Effect.Effect<void> =>
        Effect.map(Clock.currentTimeMillis, (now) => note(concertId, reason, now, reopensAt)),
      note,
      forget: (concertId: string): void => {
        closed.delete(concertId)
      }
    } as const
  })
}) {}
