//! Moving graphs between layouts and tarballs: copy, export, import (to be written).
