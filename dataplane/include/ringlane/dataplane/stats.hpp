#pragma once
// Moved to common/ (the planes meet there); this name goes once nothing includes it.
#include "ringlane/common/bytes.hpp"
#include "ringlane/shm/stats.hpp"
