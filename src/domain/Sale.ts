/**
 * A concert's sale settings (ONSALE.md §1). Every concert has them; the defaults leave the
 * one-ticket API exactly as it was.
 */
import { Schema } from "effect"
import { ConcertId } from "./Ids.js"

export const SaleMode = Schema.Literal("FIRST_COME", "DRAW")
export type SaleMode = typeof SaleMode.Type

const whole = (field: string, min: number, max: number) =>
  Schema.Number.pipe(
    Schema.filter((n) => Number.isInteger(n) && n >= min && n <= max, {
      message: () => `${field} must be a whole number from ${min} to ${max.toLocaleString("en-US")}`
    })
  )

export const MaxPerReservation = whole("max_per_reservation", 1, 100)
export const HoldSeconds = whole("hold_seconds", 1, 86_400)
export const PaymentSeconds = whole("payment_seconds", 1, 2_592_000)

/** An ISO-8601 instant (`2027-06-07T09:00:00Z`), or null. */
export const Instant = Schema.NullOr(
  Schema.String.pipe(
    Schema.filter((s) => /^\d{4}-\d{2}-\d{2}T/.test(s) && !Number.isNaN(Date.parse(s)), {
      message: () => "opens_at must be an ISO-8601 instant such as 2027-06-07T09:00:00Z, or null"
    })
  )
)

/** The draw's public record (§4); null until a concert sells by draw. */
export const DrawSummary = Schema.NullOr(Schema.Struct({ seed_sha256: Schema.String, drawn_at: Schema.NullOr(Schema.String) }))

export class SaleSettings extends Schema.Class<SaleSettings>("SaleSettings")({
  concert_id: ConcertId,
  max_per_reservation: Schema.Int,
  hold_seconds: Schema.Int,
  payment_seconds: Schema.Int,
  mode: SaleMode,
  opens_at: Schema.NullOr(Schema.String),
  draw: DrawSummary
}) {}

export const UpdateSale = Schema.Struct({
  max_per_reservation: Schema.optionalWith(MaxPerReservation, { exact: true }),
  hold_seconds: Schema.optionalWith(HoldSeconds, { exact: true }),
  payment_seconds: Schema.optionalWith(PaymentSeconds, { exact: true }),
  mode: Schema.optionalWith(SaleMode, { exact: true }),
  opens_at: Schema.optionalWith(Instant, { exact: true })
}).annotations({ identifier: "SaleSettingsUpdate", parseOptions: { onExcessProperty: "error" } })
export type UpdateSale = typeof UpdateSale.Type

/** The settings as the concert's writer holds them. */
export interface Sale {
  readonly maxPerReservation: number
  readonly holdSeconds: number
  readonly paymentSeconds: number
  readonly mode: SaleMode
  /** Epoch milliseconds, or null: open. */
  readonly opensAt: number | null
  /** The draw's commitment (its seed's SHA-256), once the concert sells by draw. */
  readonly commitment: string | null
  /** When the draw ran (epoch milliseconds). */
  readonly drawnAt: number | null
}

export const defaultSale: Sale = {
  maxPerReservation: 10,
  holdSeconds: 600,
  paymentSeconds: 172_800,
  mode: "FIRST_COME",
  opensAt: null,
  commitment: null,
  drawnAt: null
}

export const saleSettings = (concertId: ConcertId, sale: Sale): SaleSettings =>
  new SaleSettings({
    concert_id: concertId,
    max_per_reservation: sale.maxPerReservation,
    hold_seconds: sale.holdSeconds,
    payment_seconds: sale.paymentSeconds,
    mode: sale.mode,
    opens_at: sale.opensAt === null ? null : new Date(sale.opensAt).toISOString(),
    draw: sale.commitment === null
      ? null
      : { seed_sha256: sale.commitment, drawn_at: sale.drawnAt === null ? null : new Date(sale.drawnAt).toISOString() }
  })

/** Whether a draw is due now: a DRAW sale whose opening has come and whose draw has not run. */
export const drawDue = (sale: Sale, now: number): boolean =>
  sale.mode === "DRAW" && sale.drawnAt === null && sale.opensAt !== null && sale.opensAt <= now
