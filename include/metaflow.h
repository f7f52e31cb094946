/*
 * libmetaflow - run Metaflow-style ML workflows from any host.
 *
 * The umbrella header of the stable public API. Backend authors also
 * include metaflow/sys/datastore.h explicitly; it is never included here.
 *
 * See docs/abi.md for the stability promise.
 */
#ifndef METAFLOW_H
#define METAFLOW_H

#include "metaflow/common.h"
#include "metaflow/flow.h"
#include "metaflow/engine.h"
#include "metaflow/runtime.h"

#endif /* METAFLOW_H */
