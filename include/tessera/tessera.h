/* tessera: the public API (umbrella header). */
#ifndef TESSERA_H
#define TESSERA_H

#include "tessera/status.h"
#include "tessera/image.h"
#include "tessera/kernel.h"
#include "tessera/pipeline.h"
#include "tessera/partition.h"
#include "tessera/io.h"
#include "tessera/job.h"

#endif
