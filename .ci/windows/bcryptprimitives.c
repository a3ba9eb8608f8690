/* A stand-in for Windows' bcryptprimitives.dll under Wine 8 (Debian 12), which lacks it: Rust's
 * standard library imports ProcessPrng from it since Rust 1.78. Built by .ci/run with
 * MinGW-w64 into the Wine prefix the Windows tests run in; never shipped. RtlGenRandom
 * (advapi32's SystemFunction036) fills the buffer from the system's generator instead. */
#include <windows.h>
#include <ntsecapi.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!RtlGenRandom(data, chunk)) {
            return FALSE;
        }
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
