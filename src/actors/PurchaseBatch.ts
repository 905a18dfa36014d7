/**
 * What a planned batch of purchases means, as pure functions beside `SeatLedger`: the answer to
 * each order, and the rows the journal must write before any answer is sent.
 */
import type { HoldOrder, Order, PurchaseOrder, PurchaseOutcome, RegisterOrder } from "../domain/ConcertEntity.js"
import {
  ByDraw,
  ConcertCancelled,
  IdempotencyKeyReused,
  NotEnoughSeats,
  QuantityOverLimit,
  SaleNotOpen,
  SoldOut
} from "../domain/Errors.js"
import type { ConcertId } from "../domain/Ids.js"
import { ReservationRecord } from "../domain/Reservation.js"
import { TicketRecord } from "../domain/Ticket.js"
import type { HoldRow, JournalRow } from "../sql/ConcertJournal.js"
import type * as SeatLedger from "./SeatLedger.js"

// Refusals carry no data of their own: one of each serves every loser of every batch.
const soldOut = SoldOut.of()
const cancelled = ConcertCancelled.of()
const keyReused = IdempotencyKeyReused.of()
const byDraw = ByDraw.of()

export const isHold = (order: Order): order is HoldOrder => "_tag" in order && order._tag === "Hold"

export const isRegistration = (order: Order): order is RegisterOrder => "_tag" in order && order._tag === "Register"

/** When a hold made at `now` expires. */
const holdExpiry = (plan: SeatLedger.Plan<TicketRecord | ReservationRecord>, now: number) =>
  now + plan.ledger.sale.holdSeconds * 1000

/**
 * The answer to each order of a journaled plan made at `now`, in order (a repeat answers as
 * its first). `heldUntil` is the earliest expiry of the holds the concert had before the plan:
 * a refusal says when seats may come back (the plan's own holds expire later still).
 */
export const outcomesOf = (
  concertId: ConcertId,
  orders: ReadonlyArray<Order>,
  plan: SeatLedger.Plan<TicketRecord | ReservationRecord>,
  now = Date.now(),
  heldUntil?: number
): ReadonlyArray<PurchaseOutcome> => {
  const newHolds = plan.outcomes.some((outcome) => outcome._tag === "Held")
  const reopensAt = newHolds ? Math.min(heldUntil ?? Infinity, holdExpiry(plan, now)) : heldUntil
  const refusedSoldOut = reopensAt === undefined ? soldOut : SoldOut.of(reopensAt)
  const outcomes: Array<PurchaseOutcome> = []
  plan.outcomes.forEach((outcome, i) => {
    const order = orders[i]!
    switch (outcome._tag) {
      case "Allocated":
        // Fields already decoded at the RPC boundary: no second validation on the hot path.
        outcomes.push(
          new TicketRecord(
            { id: (order as PurchaseOrder).ticketId, concertId, userId: order.userId, seat: outcome.seat, printStatus: "NOT_PRINTED" },
            { disableValidation: true }
          )
        )
        break
      case "Held": {
        const hold = order as HoldOrder
        outcomes.push(
          new ReservationRecord({
            id: hold.reservationId,
            concertId,
            userId: hold.userId,
            quantity: hold.quantity,
            seats: [...outcome.seats].sort((a, b) => a - b),
            status: "HELD",
            expiresAt: holdExpiry(plan, now),
            invoiceNumber: null,
            tickets: []
          }, { disableValidation: true })
        )
        break
      }
      case "NotEnough":
        outcomes.push(NotEnoughSeats.of(outcome.left, (order as HoldOrder).quantity, reopensAt))
        break
      case "OverLimit":
        outcomes.push(QuantityOverLimit.of(outcome.max))
        break
      case "NotOpen":
        outcomes.push(SaleNotOpen.of(outcome.opensAt, now))
        break
      case "ByDraw":
        outcomes.push(byDraw)
        break
      case "Existing":
        outcomes.push(outcome.ticket)
        break
      case "KeyReused":
        outcomes.push(keyReused)
        break
      case "Refused":
        outcomes.push(outcome.reason === "Cancelled" ? cancelled : refusedSoldOut)
        break
      case "SameAs":
        outcomes.push(outcomes[outcome.index]!)
    }
  })
  return outcomes
}

/** The reservations a plan made at `now` holds, as the journal writes them. */
export const holdRows = (
  orders: ReadonlyArray<Order>,
  plan: SeatLedger.Plan<TicketRecord | ReservationRecord>,
  now = Date.now()
): ReadonlyArray<HoldRow> =>
  plan.outcomes.flatMap((outcome, i) => {
    if (outcome._tag !== "Held") return []
    const { idempotencyKey, reservationId, userId } = orders[i] as HoldOrder
    return [{ id: reservationId, userId, seats: outcome.seats, expiresAt: holdExpiry(plan, now), idempotencyKey }]
  })

/** The tickets a plan sells, as the journal writes them: the allocated orders, in order. */
export const journalRows = (
  orders: ReadonlyArray<Order>,
  plan: SeatLedger.Plan<TicketRecord | ReservationRecord>
): ReadonlyArray<JournalRow> =>
  plan.outcomes.flatMap((outcome, i) => {
    if (outcome._tag !== "Allocated") return []
    const { idempotencyKey, ticketId, userId } = orders[i] as PurchaseOrder
    return [{ id: ticketId, seat: outcome.seat, userId, idempotencyKey }]
  })
