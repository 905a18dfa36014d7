import * as Entity from "@effect/cluster/Entity"
import { AlreadyProcessingMessage, MailboxFull, PersistenceError } from "@effect/cluster/ClusterError"
import * as Rpc from "@effect/rpc/Rpc"
import { Schema } from "effect"
import { Order, PurchaseOutcome } from "./ConcertEntity.js"
import { ConcertNotFound } from "./Errors.js"
import type { ConcertId } from "./Ids.js"
import { TicketRecord } from "./Ticket.js"

/*
 * A runner's sales desk: the orders a process has for the concerts of one other runner, all
 * of them in one message. Sent concert by concert, each purchase that lands on a process other
 * than its concert's owner paid a whole message (envelope, request, reply, fibers, a socket
 * write) for one or two orders; a desk message carries every concert's batch for that runner.
 * Wire format, like the concert entity's: the entity type and the tag are not renamed casually.
 */

/** What one order got at the desk: its concert's outcome, or why its concert's batch got none. */
export const DeskOutcome = Schema.Union(PurchaseOutcome, ConcertNotFound, MailboxFull, AlreadyProcessingMessage, PersistenceError)
export type DeskOutcome = typeof DeskOutcome.Type

/**
 * An outcome as the desk sends it back: the seat alone for the commonest, a purchase's own new
 * ticket (its id, buyer and concert are the order's, and it is not printed yet), which the
 * sender makes whole again from its order (`fromDesk`); any other outcome whole. Decoding a
 * ticket record (a class, with its ids' patterns) was a tenth of a crossing purchase's cost to
 * its sender, and encoding it a share of the desk's.
 */
export const DeskAnswer = Schema.Union(Schema.Int, DeskOutcome)
export type DeskAnswer = typeof DeskAnswer.Type

/** `outcome` of `order` (for `concertId`) as the desk sends it. */
export const toDesk = (concertId: string, order: Order, outcome: DeskOutcome): DeskAnswer =>
  outcome instanceof TicketRecord && "ticketId" in order && outcome.id === order.ticketId &&
    outcome.userId === order.userId && outcome.concertId === concertId && outcome.printStatus === "NOT_PRINTED"
    ? outcome.seat
    : outcome

/** What the desk sent back for `order` (for `concertId`), whole again. */
export const fromDesk = (concertId: string, order: Order, answer: DeskAnswer): DeskOutcome =>
  typeof answer === "number" && "ticketId" in order
    ? new TicketRecord(
      { id: order.ticketId, concertId: concertId as ConcertId, userId: order.userId, seat: answer, printStatus: "NOT_PRINTED" },
      { disableValidation: true }
    )
    : answer as DeskOutcome

const OrdersPayload = Schema.Struct({
  concerts: Schema.NonEmptyArray(Schema.Struct({ concertId: Schema.String, orders: Schema.NonEmptyArray(Order) }))
})

/**
 * Each concert's orders, answered per concert and order, in order. Volatile, as purchases are:
 * a message lost on the way is sent again concert by concert, the orders' unique keys making a
 * repeat of a written order that order's ticket.
 *
 * The payload is a bare schema (`Schema.make` of the struct's AST): the RPC client validates a
 * payload through its schema's `make` before sending, where it has one, and that pass over
 * every order cost the sender about a twelfth of its CPU for each crossing purchase. The orders
 * were decoded where they came in, and are checked again as they are encoded when they cross to
 * another runner.
 */
export const DeskOrders = Rpc.make("Orders", {
  payload: Schema.make<typeof OrdersPayload.Type, typeof OrdersPayload.Encoded, typeof OrdersPayload.Context>(
    OrdersPayload.ast
  ),
  success: Schema.Array(Schema.Array(DeskAnswer))
})

export const SalesDesk = Entity.make("SalesDesk", [DeskOrders])
