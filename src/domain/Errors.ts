import { HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"

/**
 * Every error the API answers with has the body `{"error": "<message>"}`; the class is what
 * handlers fail with, the status travels with it.
 */
const ErrorBody = Schema.Struct({ error: Schema.String })

const withErrorBody = <Self extends { readonly message: string }, Tag extends string>(
  schema: Schema.Schema<Self, { readonly _tag: Tag; readonly message: string }>,
  tag: Tag,
  status: number
) =>
  Schema.transform(ErrorBody, schema, {
    strict: true,
    decode: ({ error }) => ({ _tag: tag, message: error }),
    encode: ({ message }) => ({ error: message })
  }).annotations(HttpApiSchema.annotations({ status }))

export class BadRequest extends Schema.TaggedError<BadRequest>()("BadRequest", { message: Schema.String }) {}
export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", { message: Schema.String }) {}
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()("PayloadTooLarge", {
  message: Schema.String
}) {}
/** 422: the purchase cannot be made (sold out, cancelled, or an idempotency key reused for another body). */
export class PurchaseRefused extends Schema.TaggedError<PurchaseRefused>()("PurchaseRefused", {
  message: Schema.String
}) {}
/** 503: retry later (a full mailbox, the database away, a plan not rendered yet). */
export class Unavailable extends Schema.TaggedError<Unavailable>()("Unavailable", {
  message: Schema.String,
  retryAfterSeconds: Schema.optionalWith(Schema.Int, { default: () => 1 })
}) {}

export const BadRequestBody = withErrorBody(BadRequest, "BadRequest", 400)
export const NotFoundBody = withErrorBody(NotFound, "NotFound", 404)
export const PayloadTooLargeBody = withErrorBody(PayloadTooLarge, "PayloadTooLarge", 413)
export const PurchaseRefusedBody = withErrorBody(PurchaseRefused, "PurchaseRefused", 422)
export const UnavailableBody = Schema.transform(ErrorBody, Unavailable, {
  strict: true,
  decode: ({ error }) => ({ _tag: "Unavailable" as const, message: error }),
  encode: ({ message }) => ({ error: message })
}).annotations(HttpApiSchema.annotations({ status: 503 }))
