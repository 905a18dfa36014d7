import * as Entity from "@effect/cluster/Entity"
import { AlreadyProcessingMessage, MailboxFull, PersistenceError } from "@effect/cluster/ClusterError"
import * as Rpc from "@effect/rpc/Rpc"
import { ParseResult, Schema } from "effect"
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
type OrdersPayload = typeof OrdersPayload.Type

const Answers = Schema.Array(Schema.Array(DeskAnswer))
type Answers = typeof Answers.Type

/** A ticket id as the service writes it: a lowercase UUID, which `TicketId` leaves as it is. */
const lowercaseUuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

const purchaseKeys = new Set(["ticketId", "userId", "deadline", "idempotencyKey"])

/**
 * A purchase order exactly as `Order` decodes it and encodes it (the two are the same): a
 * lowercase ticket id, a non-empty user id, a number for its deadline and text for its key if it
 * has them, and nothing else. Holds, registrations and anything odd are left to the schema.
 */
const plainPurchase = (order: unknown): boolean => {
  if (typeof order !== "object" || order === null) return false
  const { deadline, idempotencyKey, ticketId, userId } = order as Record<string, unknown>
  if (
    typeof ticketId !== "string" || typeof userId !== "string" || userId.length === 0 ||
    (deadline !== undefined && typeof deadline !== "number") ||
    (idempotencyKey !== undefined && typeof idempotencyKey !== "string") || !lowercaseUuid.test(ticketId)
  ) return false
  for (const key in order) if (!purchaseKeys.has(key)) return false
  return Object.getPrototypeOf(order) === Object.prototype
}

/** Only `keys` of its own, as a plain object: what the schema would give back as it came. */
const plainWith = (value: unknown, keys: ReadonlyArray<string>): value is Record<string, unknown> => {
  if (typeof value !== "object" || value === null || Object.getPrototypeOf(value) !== Object.prototype) return false
  let count = 0
  for (const key in value) {
    if (!keys.includes(key)) return false
    count++
  }
  return count === keys.length
}

/** A desk message whose every order is a plain purchase: the schema would give it back unchanged. */
const plainPayload = (payload: unknown): payload is OrdersPayload => {
  if (!plainWith(payload, ["concerts"]) || !Array.isArray(payload.concerts) || payload.concerts.length === 0) return false
  for (const concert of payload.concerts as ReadonlyArray<unknown>) {
    if (!plainWith(concert, ["concertId", "orders"]) || typeof concert.concertId !== "string") return false
    const orders = concert.orders
    if (!Array.isArray(orders) || orders.length === 0 || !orders.every(plainPurchase)) return false
  }
  return true
}

/** Answers that are all seats (`Schema.Int`): the schema would give them back unchanged. */
const plainAnswers = (answers: unknown): answers is Answers =>
  Array.isArray(answers) &&
  answers.every((concert) => Array.isArray(concert) && concert.every((answer) => Number.isSafeInteger(answer)))

/**
 * `schema` on the wire, with the commonest values checked in plain code: a value `plain` accepts
 * is one the schema decodes and encodes to itself, and crosses as it is; any other goes through
 * the schema. Every crossing purchase paid the schema's pass over its order twice (encoded by its
 * sender, decoded by the desk) and over its answer twice, where the cluster's own envelope and
 * reply passes already run.
 */
const checkedPlainly = <A, I>(schema: Schema.Schema<A, I>, plain: (value: unknown) => value is A) => {
  const decode = ParseResult.decodeUnknown(schema)
  const encode = ParseResult.encodeUnknown(schema)
  return Schema.declare([], {
    decode: () => (input, options) => plain(input) ? ParseResult.succeed(input) : decode(input, options),
    encode: () => (input, options) => plain(input) ? ParseResult.succeed(input as unknown as I) : encode(input, options)
  }) as unknown as Schema.Schema<A, I>
}

/**
 * Each concert's orders, answered per concert and order, in order. Volatile, as purchases are:
 * a message lost on the way is sent again concert by concert, the orders' unique keys making a
 * repeat of a written order that order's ticket.
 *
 * The payload is not a struct: the RPC client validates a payload through its schema's `make`
 * before sending, where it has one, and that pass over every order cost the sender about a
 * twelfth of its CPU for each crossing purchase. The orders were decoded where they came in, and
 * are checked again as they are encoded when they cross to another runner.
 */
export const DeskOrders = Rpc.make("Orders", {
  payload: checkedPlainly(OrdersPayload, plainPayload),
  success: checkedPlainly(Answers, plainAnswers)
})

/** The desk's wire schemas, for tests that hold them to the schemas they stand for. */
export const deskWire = { OrdersPayload, Answers, payload: DeskOrders.payloadSchema, success: DeskOrders.successSchema } as const

export const SalesDesk = Entity.make("SalesDesk", [DeskOrders])
