/* The resume journal's reader: a journal left by a killed run, in any
 * state (torn record, bad CRC, wrong version), loaded as --resume does. */
#include "fuzz.h"
#include "engine/journal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  ts_journal_state s;
  ts_error e;
  if (ts_journal_load(fuzz_file(data, n, ".journal"), &s, &e) == TS_OK) ts_journal_state_free(&s);
  return 0;
}
