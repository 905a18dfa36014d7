/**
 * A desk message on the wire: its payload and its answers are checked in plain code where they
 * are the commonest (plain purchases, seats), and must decode and encode exactly as the schemas
 * they stand for, whatever crosses.
 */
import { expect, it } from "@effect/vitest"
import { Either, FastCheck as fc, Schema } from "effect"
import { deskWire } from "../../src/domain/SalesDesk.js"

const uuid = fc.oneof(fc.uuid(), fc.uuid().map((id) => id.toUpperCase()), fc.string())

const order = fc.oneof(
  fc.record(
    {
      ticketId: uuid,
      userId: fc.oneof(fc.string(), fc.constant(""), fc.integer()),
      deadline: fc.oneof(fc.double(), fc.integer(), fc.string()),
      idempotencyKey: fc.oneof(fc.string(), fc.integer()),
      extra: fc.string()
    },
    { requiredKeys: [] }
  ),
  fc.record({
    _tag: fc.constantFrom("Hold", "Register", "Other"),
    reservationId: uuid,
    registrationId: uuid,
    userId: fc.string(),
    quantity: fc.integer()
  }, { requiredKeys: ["_tag", "userId", "quantity"] }),
  fc.record({ ticketId: fc.uuid(), userId: fc.string({ minLength: 1 }), deadline: fc.integer() }),
  fc.anything()
)

/** Orders that are plain purchases, or nearly: the ids' case, a field's type or one key more. */
const nearlyPlain = fc.record(
  {
    ticketId: fc.oneof(fc.uuid(), fc.uuid().map((id) => id.toUpperCase())),
    userId: fc.oneof(fc.string({ minLength: 1 }), fc.constant("")),
    deadline: fc.oneof(fc.integer(), fc.constant("soon")),
    idempotencyKey: fc.string(),
    seat: fc.integer()
  },
  { requiredKeys: ["ticketId", "userId"] }
)

const payload = fc.oneof(
  fc.record({
    concerts: fc.array(fc.record({ concertId: fc.uuid(), orders: fc.array(nearlyPlain, { minLength: 1, maxLength: 3 }) }), {
      minLength: 1,
      maxLength: 3
    })
  }),
  fc.record({
    concerts: fc.array(fc.record({ concertId: fc.oneof(fc.uuid(), fc.integer()), orders: fc.array(order, { maxLength: 4 }) }), {
      maxLength: 4
    })
  }),
  fc.record({
    concerts: fc.array(fc.record({ concertId: fc.uuid(), orders: fc.array(order, { minLength: 1, maxLength: 4 }) }), {
      minLength: 1,
      maxLength: 4
    }),
    extra: fc.string()
  }, { requiredKeys: ["concerts"] }),
  fc.anything()
)

const answers = fc.oneof(
  fc.array(fc.array(fc.oneof(fc.integer(), fc.double(), fc.constant(2 ** 60), fc.string()), { maxLength: 4 }), { maxLength: 4 }),
  fc.array(fc.array(fc.nat(), { maxLength: 4 }), { maxLength: 4 }),
  fc.anything()
)

/** The same answer from both: failed both, or the same value. */
const alike = <A>(fast: Either.Either<A, unknown>, schema: Either.Either<A, unknown>) => {
  expect(fast._tag).toBe(schema._tag)
  if (Either.isRight(fast) && Either.isRight(schema)) expect(fast.right).toEqual(schema.right)
}

it.prop(
  "a desk message's orders decode and encode in plain code exactly as through the orders' schema",
  [payload],
  ([value]) => {
    // Through JSON, as msgpack hands the desk a fresh plain object.
    const wire = value === undefined ? value : JSON.parse(JSON.stringify(value) ?? "null")
    alike(Schema.decodeUnknownEither(deskWire.payload)(wire), Schema.decodeUnknownEither(deskWire.OrdersPayload)(wire))
    alike(
      Schema.encodeUnknownEither(deskWire.payload)(wire),
      Schema.encodeUnknownEither(deskWire.OrdersPayload)(wire)
    )
  },
  { fastCheck: { numRuns: 3000 } }
)

it.prop(
  "a desk message's answers decode and encode in plain code exactly as through the answers' schema",
  [answers],
  ([value]) => {
    alike(Schema.decodeUnknownEither(deskWire.success)(value), Schema.decodeUnknownEither(deskWire.Answers)(value))
    alike(Schema.encodeUnknownEither(deskWire.success)(value), Schema.encodeUnknownEither(deskWire.Answers)(value))
  },
  { fastCheck: { numRuns: 3000 } }
)
