import * as Entity from "@effect/cluster/Entity"
import * as Rpc from "@effect/rpc/Rpc"
import { Schema } from "effect"
import { Concert, UpdateConcert } from "./Concert.js"
import {
  AlreadyRegistered,
  BadSaleSettings,
  ByDraw,
  NotInLine,
  RegistrationNotFound,
  SaleLocked,
  ConcertCancelled,
  ConcertNotFound,
  IdempotencyKeyReused,
  NotEnoughSeats,
  QuantityOverLimit,
  ReservationNotFound,
  SaleNotOpen,
  SoldOut,
  WrongState
} from "./Errors.js"
import { TicketId, UserId } from "./Ids.js"
import { RegistrationId, RegistrationRecord } from "./Registration.js"
import { ReservationId, ReservationRecord } from "./Reservation.js"
import { SaleSettings, UpdateSale } from "./Sale.js"
import { TicketRecord } from "./Ticket.js"

/*
 * The concert entity's protocol. The entity type, the RPC tags and the error tags are wire
 * format: runners of different builds must agree on them, so they are not renamed casually.
 * The refusals a buyer sees are the API's own errors (`Errors.ts`), passed on as they are.
 */

/** The journal could not be written; nothing was sold, the caller may retry. */
export class JournalUnavailable extends Schema.TaggedError<JournalUnavailable>()("JournalUnavailable", {
  reason: Schema.String
}) {}

/** What every order carries: the buyer's idempotency key, and when it is too late to journal it. */
const retrySafety = {
  idempotencyKey: Schema.optionalWith(Schema.String, { exact: true }),
  deadline: Schema.optionalWith(Schema.Number, { exact: true })
}

/**
 * One buyer's order. A retry is made safe by the ticket id (and the idempotency key). An order
 * with a `deadline` (epoch milliseconds) is never journaled after it: its buyer has been told
 * 503 by then, and a retry without a key must not find a second ticket bought.
 */
export const PurchaseOrder = Schema.Struct({
  ticketId: TicketId,
  userId: UserId,
  ...retrySafety
})
export type PurchaseOrder = typeof PurchaseOrder.Type

/** One buyer's order for `quantity` seats held together, all or nothing, as a new reservation. */
export const HoldOrder = Schema.TaggedStruct("Hold", {
  reservationId: ReservationId,
  userId: UserId,
  quantity: Schema.Int,
  ...retrySafety
})
export type HoldOrder = typeof HoldOrder.Type

/** One person's registration: before a draw, or to join the waiting line. */
export const RegisterOrder = Schema.TaggedStruct("Register", {
  registrationId: RegistrationId,
  userId: UserId,
  quantity: Schema.Int,
  ...retrySafety
})
export type RegisterOrder = typeof RegisterOrder.Type

export const Order = Schema.Union(PurchaseOrder, HoldOrder, RegisterOrder)
export type Order = typeof Order.Type

/** What one order got: its ticket or reservation, or why not. */
export const PurchaseOutcome = Schema.Union(
  TicketRecord,
  ReservationRecord,
  RegistrationRecord,
  AlreadyRegistered,
  NotInLine,
  ByDraw,
  SoldOut,
  ConcertCancelled,
  IdempotencyKeyReused,
  NotEnoughSeats,
  QuantityOverLimit,
  SaleNotOpen,
  JournalUnavailable
)
export type PurchaseOutcome = typeof PurchaseOutcome.Type

/**
 * Buy one seat, or hold several, for each order, answered in order. A process sends the orders
 * of all its buyers waiting on one concert as one message: the per-message cost of the cluster
 * is paid per batch, not per buyer. Volatile: orders are idempotent through their unique keys.
 */
export const Purchases = Rpc.make("Purchases", {
  payload: { orders: Schema.NonEmptyArray(Order) },
  success: Schema.Array(PurchaseOutcome),
  error: ConcertNotFound
})

/** Change name, venue, date or status; serialised with purchases so status and sales agree. */
export const Update = Rpc.make("Update", {
  payload: UpdateConcert,
  success: Concert,
  error: Schema.Union(ConcertNotFound, JournalUnavailable)
})

/** What a buyer does with a reservation (ONSALE.md §2). */
export const Transition = Rpc.make("Transition", {
  payload: { reservationId: ReservationId, action: Schema.Literal("checkout", "payment", "cancel") },
  success: ReservationRecord,
  error: Schema.Union(ReservationNotFound, WrongState, JournalUnavailable)
})

/** Release the holds whose time has passed; sent by the concert's own wake-up timer. */
export const Expire = Rpc.make("Expire", {
  error: Schema.Union(ConcertNotFound, JournalUnavailable)
})

/** Change the sale settings; serialised with the decisions they govern. */
export const ChangeSale = Rpc.make("ChangeSale", {
  payload: UpdateSale,
  success: SaleSettings,
  error: Schema.Union(ConcertNotFound, SaleLocked, BadSaleSettings, JournalUnavailable)
})

/** A registration withdrawn by its holder (an offer's seats are released). */
export const Withdraw = Rpc.make("Withdraw", {
  payload: { registrationId: RegistrationId },
  success: RegistrationRecord,
  error: Schema.Union(RegistrationNotFound, WrongState, JournalUnavailable)
})

export const ConcertEntity = Entity.make("Concert", [Purchases, Update, Transition, Expire, ChangeSale, Withdraw])
