/**
 * What a concert entity holds between messages, with its transitions named: the ledger and the
 * reservations that hold seats are loaded from the journal on first use, adopted after each
 * journaled change, and forgotten after any failed write so that the next message starts again
 * from the journal.
 */
import { Effect, Option } from "effect"
import type { ConcertId } from "../domain/Ids.js"
import type { Ledger } from "../domain/Ledger.js"
import { ReservationRecord } from "../domain/Reservation.js"
import type { ConcertJournal, JournalError } from "../sql/ConcertJournal.js"

export interface Loaded {
  readonly ledger: Ledger
  /** The reservations that hold seats now (HELD or AWAITING_PAYMENT), by id. */
  readonly live: ReadonlyMap<string, ReservationRecord>
}

export class ConcertState {
  /** `undefined`: not loaded (or forgotten); `None`: the concert does not exist (asked again next time). */
  private loaded: Option.Option<{ ledger: Ledger; live: Map<string, ReservationRecord> }> | undefined = undefined

  constructor(
    private readonly concertId: ConcertId,
    private readonly journal: ConcertJournal
  ) {}

  /** The ledger and live reservations, loaded from the journal unless this entity holds them. */
  readonly current: Effect.Effect<Option.Option<Loaded>, JournalError> = Effect.suspend(() =>
    this.loaded !== undefined && Option.isSome(this.loaded)
      ? Effect.succeed(this.loaded)
      : Effect.map(
        Effect.all([this.journal.load(this.concertId), this.journal.liveReservations(this.concertId)]),
        ([ledger, rows]) => {
          this.loaded = Option.map(ledger, (ledger) => ({
            ledger,
            live: new Map(rows.map((row) => [row.id, new ReservationRecord({ ...row, tickets: [] })]))
          }))
          return this.loaded
        }
      )
  )

  /** A change is journaled: it is what the concert is now. */
  adopt(next: Ledger): void {
    if (this.loaded !== undefined && Option.isSome(this.loaded)) this.loaded.value.ledger = next
  }

  /** A reservation now holds seats (or holds them in a new state). */
  hold(reservation: ReservationRecord): void {
    if (this.loaded !== undefined && Option.isSome(this.loaded)) this.loaded.value.live.set(reservation.id, reservation)
  }

  /** A reservation no longer holds seats. */
  drop(reservationId: string): void {
    if (this.loaded !== undefined && Option.isSome(this.loaded)) this.loaded.value.live.delete(reservationId)
  }

  /** The earliest moment a live reservation expires, if any does. */
  earliestExpiry(): number | undefined {
    if (this.loaded === undefined || Option.isNone(this.loaded)) return undefined
    let earliest: number | undefined
    for (const r of this.loaded.value.live.values()) {
      if (r.expiresAt !== null && (earliest === undefined || r.expiresAt < earliest)) earliest = r.expiresAt
    }
    return earliest
  }

  /** A write failed or its outcome is unknown: believe only the journal from now on. */
  forget(): void {
    this.loaded = undefined
  }
}
