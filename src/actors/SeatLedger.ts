/**
 * The allocation rules of one concert, as pure functions over its ledger. The concert entity is
 * the only writer: it plans a whole mailbox batch here, journals the plan, then adopts the
 * ledger the plan produced.
 */
import { Concert, type ConcertStatus, type UpdateConcert } from "../domain/Concert.js"
import { type Ledger, taken } from "../domain/Ledger.js"
import type { Sale } from "../domain/Sale.js"

export type { Ledger }
export { taken }

/** One seat, sold at once. */
export interface PurchaseRequest {
  readonly ticketId: string
  readonly userId: string
  readonly idempotencyKey?: string | undefined
}

/** `quantity` seats held, all or nothing. */
export interface HoldRequest {
  readonly _tag: "Hold"
  readonly reservationId: string
  readonly userId: string
  readonly quantity: number
  readonly idempotencyKey?: string | undefined
}

export type Request = PurchaseRequest | HoldRequest

const isHold = (request: Request): request is HoldRequest => "_tag" in request

/** What an earlier request with the same idempotency key got (a reservation has a quantity). */
export interface KeyedTicket {
  readonly id: string
  readonly concertId: string
  readonly userId: string
  readonly quantity?: number
}

export type Refusal = "SoldOut" | "Cancelled"

export type Outcome<T extends KeyedTicket = KeyedTicket> =
  /** A new ticket on `seat`, to be journaled. */
  | { readonly _tag: "Allocated"; readonly seat: number }
  /** New held seats, to be journaled with their reservation. */
  | { readonly _tag: "Held"; readonly seats: ReadonlyArray<number> }
  /** The key already got this with the same body: answer with it. */
  | { readonly _tag: "Existing"; readonly ticket: T }
  /** The key already got something with another body. */
  | { readonly _tag: "KeyReused" }
  | { readonly _tag: "Refused"; readonly reason: Refusal }
  /** A hold that does not fit: `left` seats can be held now. */
  | { readonly _tag: "NotEnough"; readonly left: number }
  /** A hold of more seats than the concert's `max_per_reservation`. */
  | { readonly _tag: "OverLimit"; readonly max: number }
  /** The sale opens at `opensAt` (epoch milliseconds). */
  | { readonly _tag: "NotOpen"; readonly opensAt: number }
  /** A draw's line is being served: no sale outside it. */
  | { readonly _tag: "ByDraw" }
  /** A repeat, in the same batch, of the request at `index`: answer as that one is answered. */
  | { readonly _tag: "SameAs"; readonly index: number }

export interface Plan<T extends KeyedTicket = KeyedTicket> {
  readonly ledger: Ledger
  readonly outcomes: ReadonlyArray<Outcome<T>>
  /** How many requests got seats (tickets or holds). */
  readonly allocated: number
}

export const remaining = (ledger: Ledger): number => ledger.concert.capacity - taken(ledger)

/** Why this concert sells nothing now, if it does not. */
export const refusal = (ledger: Ledger): Refusal | undefined =>
  ledger.concert.status === "CANCELLED"
    ? "Cancelled"
    : ledger.concert.status === "SOLD_OUT" || remaining(ledger) <= 0
    ? "SoldOut"
    : undefined

/** The status a concert reads: a full concert reads SOLD_OUT unless it was cancelled. */
export const effectiveStatus = (requested: ConcertStatus, taken: number, capacity: number): ConcertStatus =>
  requested === "CANCELLED" ? "CANCELLED" : taken >= capacity ? "SOLD_OUT" : requested

/** Seats handed out, lowest free first: mutable state of one plan. */
class Seats {
  private freeAt = 0
  constructor(private readonly free: ReadonlyArray<number>, public next: number, private readonly capacity: number) {}
  get remaining(): number {
    return this.capacity - (this.next - (this.free.length - this.freeAt))
  }
  take(count: number): Array<number> {
    const seats: Array<number> = []
    while (seats.length < count && this.freeAt < this.free.length) seats.push(this.free[this.freeAt++]!)
    while (seats.length < count) seats.push(++this.next)
    return seats
  }
  get stillFree(): ReadonlyArray<number> {
    return this.freeAt === 0 ? this.free : this.free.slice(this.freeAt)
  }
}

const sameRequest = (earlier: KeyedTicket, request: Request, concertId: string) =>
  earlier.concertId === concertId && earlier.userId === request.userId &&
  earlier.quantity === (isHold(request) ? request.quantity : undefined)

/**
 * Decides a batch in arrival order. `existing` holds what earlier requests with the batch's
 * idempotency keys got (looked up in the journal before planning); `now` is for `opens_at`.
 */
export const plan = <T extends KeyedTicket>(
  ledger: Ledger,
  requests: ReadonlyArray<Request>,
  existing: ReadonlyMap<string, T>,
  now = Date.now(),
  byDraw = false
): Plan<T> => {
  const seats = new Seats(ledger.free, ledger.next, ledger.concert.capacity)
  let allocated = 0
  const firstWithKey = new Map<string, number>()
  const closed = ledger.concert.status === "CANCELLED"
    ? "Cancelled"
    : ledger.concert.status === "SOLD_OUT"
    ? "SoldOut"
    : undefined
  const { maxPerReservation, opensAt } = ledger.sale
  const outcomes = requests.map((request, index): Outcome<T> => {
    const key = request.idempotencyKey
    if (key !== undefined) {
      const earlier = existing.get(key)
      if (earlier !== undefined) {
        return sameRequest(earlier, request, ledger.concert.id) ? { _tag: "Existing", ticket: earlier } : { _tag: "KeyReused" }
      }
      const first = firstWithKey.get(key)
      if (first !== undefined) {
        const firstRequest = requests[first]!
        return firstRequest.userId === request.userId && isHold(firstRequest) === isHold(request) &&
            (!isHold(request) || (firstRequest as HoldRequest).quantity === request.quantity)
          ? { _tag: "SameAs", index: first }
          : { _tag: "KeyReused" }
      }
      firstWithKey.set(key, index)
    }
    if (closed === "Cancelled") return { _tag: "Refused", reason: closed }
    if (opensAt !== null && now < opensAt) return { _tag: "NotOpen", opensAt }
    if (byDraw) return { _tag: "ByDraw" }
    if (isHold(request)) {
      if (request.quantity > maxPerReservation) return { _tag: "OverLimit", max: maxPerReservation }
      const left = closed === undefined ? seats.remaining : 0
      if (left < request.quantity) return { _tag: "NotEnough", left }
      allocated += 1
      return { _tag: "Held", seats: seats.take(request.quantity) }
    }
    if (closed !== undefined || seats.remaining <= 0) return { _tag: "Refused", reason: "SoldOut" }
    allocated += 1
    return { _tag: "Allocated", seat: seats.take(1)[0]! }
  })
  if (allocated === 0) return { ledger, outcomes, allocated }
  const next = { ...ledger, next: seats.next, free: seats.stillFree }
  const status = effectiveStatus(ledger.concert.status, taken(next), ledger.concert.capacity)
  return { ledger: { ...next, concert: withStatus(ledger.concert, status) }, outcomes, allocated }
}

const withStatus = (concert: Concert, status: ConcertStatus): Concert =>
  concert.status === status ? concert : new Concert({ ...concert, status })

/**
 * The ledger after held seats come back (a reservation cancelled or expired): they are free
 * again, handed out first, and a full concert reads ACTIVE again.
 */
export const release = (ledger: Ledger, seats: ReadonlyArray<number>): Ledger => {
  if (seats.length === 0) return ledger
  const free = [...ledger.free, ...seats].sort((a, b) => a - b)
  const next = { ...ledger, free }
  // Only a status this ledger set itself comes back: an organiser's SOLD_OUT stays.
  const status = ledger.concert.status === "SOLD_OUT" && taken(ledger) >= ledger.concert.capacity && taken(next) < ledger.concert.capacity
    ? "ACTIVE"
    : ledger.concert.status
  return { ...next, concert: withStatus(ledger.concert, status) }
}

/**
 * Seats for each of `quantities`, lowest free first (the caller has checked they fit): for
 * offers to registrations, which take seats outside a batch of requests.
 */
export const holdFor = (
  ledger: Ledger,
  quantities: ReadonlyArray<number>
): { readonly ledger: Ledger; readonly seats: ReadonlyArray<ReadonlyArray<number>> } => {
  const seats = new Seats(ledger.free, ledger.next, ledger.concert.capacity)
  const held = quantities.map((quantity) => seats.take(quantity))
  const next = { ...ledger, next: seats.next, free: seats.stillFree }
  const status = effectiveStatus(ledger.concert.status, taken(next), ledger.concert.capacity)
  return { ledger: { ...next, concert: withStatus(ledger.concert, status) }, seats: held }
}

/** Whether seats that come back may go to the line: not when cancelled or closed by the organiser. */
export const offersSeats = (ledger: Ledger): boolean =>
  ledger.concert.status !== "CANCELLED" &&
  (ledger.concert.status !== "SOLD_OUT" || taken(ledger) >= ledger.concert.capacity) &&
  remaining(ledger) > 0

/** The ledger with new sale settings. */
export const withSale = (ledger: Ledger, sale: Sale): Ledger => ({ ...ledger, sale })

/** The concert after an update: given fields replaced, the status as it will read. */
export const applyUpdate = (ledger: Ledger, update: UpdateConcert): Ledger => {
  // An organiser may close sales (SOLD_OUT) or cancel; reopening a full concert still reads SOLD_OUT.
  const status = effectiveStatus(update.status ?? ledger.concert.status, taken(ledger), ledger.concert.capacity)
  return {
    ...ledger,
    version: ledger.version + 1,
    concert: new Concert({
      ...ledger.concert,
      name: update.name ?? ledger.concert.name,
      venue: update.venue ?? ledger.concert.venue,
      date: update.date ?? ledger.concert.date,
      status
    })
  }
}
