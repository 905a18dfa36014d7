/**
 * What a concert entity holds between messages, with its transitions named: the ledger is
 * loaded from the journal on first use, adopted after each journaled change, and forgotten
 * after any failed write so that the next message starts again from the journal. New kinds
 * of state (holds, their expiries, offers) belong here as new transitions.
 */
import { Effect, Option } from "effect"
import type { ConcertId } from "../domain/Ids.js"
import type { Ledger } from "../domain/Ledger.js"
import type { ConcertJournal, JournalError } from "../sql/ConcertJournal.js"

export class ConcertState {
  /** `undefined`: not loaded (or forgotten); `None`: the concert does not exist (asked again next time). */
  private ledger: Option.Option<Ledger> | undefined = undefined

  constructor(
    private readonly concertId: ConcertId,
    private readonly journal: ConcertJournal
  ) {}

  /** The ledger, loaded from the journal unless this entity holds it. */
  readonly current: Effect.Effect<Option.Option<Ledger>, JournalError> = Effect.suspend(() =>
    this.ledger !== undefined && Option.isSome(this.ledger)
      ? Effect.succeed(this.ledger)
      : Effect.tap(this.journal.load(this.concertId), (loaded) => {
        this.ledger = loaded
      })
  )

  /** A change is journaled: it is what the concert is now. */
  adopt(next: Ledger): void {
    this.ledger = Option.some(next)
  }

  /** A write failed or its outcome is unknown: believe only the journal from now on. */
  forget(): void {
    this.ledger = undefined
  }
}
