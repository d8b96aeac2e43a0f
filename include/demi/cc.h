/*
 * <demi/cc.h>: compiler helpers shared by the demixdp headers.
 *
 * demixdp's build of the Demikernel C ABI. The annotation macros below exist
 * so that sources written for Demikernel, which may use them, keep
 * compiling; they expand to nothing. The declarations of the other headers
 * carry no nonnull attribute: demixdp checks its pointer arguments and
 * returns EINVAL for a NULL one.
 */
#ifndef DEMI_CC_H
#define DEMI_CC_H

/* Parameter annotations (Microsoft SAL), empty outside MSVC. */
#ifndef _MSC_VER
#ifndef _In_
#define _In_
#endif
#ifndef _In_z_
#define _In_z_
#endif
#ifndef _In_opt_
#define _In_opt_
#endif
#ifndef _Inout_
#define _Inout_
#endif
#ifndef _In_reads_
#define _In_reads_(count)
#endif
#ifndef _In_reads_bytes_
#define _In_reads_bytes_(bytes)
#endif
#ifndef _Out_
#define _Out_
#endif
#ifndef _Out_writes_to_
#define _Out_writes_to_(size, count)
#endif
#ifndef _Out_writes_to_opt_
#define _Out_writes_to_opt_(size, count)
#endif
#ifndef _Deref_pre_z_
#define _Deref_pre_z_
#endif
#endif

/*
 * Function attributes for applications that use them. ATTR_NONNULL is a
 * variadic macro, which needs C99 or C++11.
 */
#if defined(__GNUC__)
#define ATTR_NODISCARD __attribute__((warn_unused_result))
#else
#define ATTR_NODISCARD
#endif
#if (defined(__STDC_VERSION__) && __STDC_VERSION__ >= 199901L) || (defined(__cplusplus) && __cplusplus >= 201103L)
#if defined(__GNUC__)
#define ATTR_NONNULL(...) __attribute__((nonnull(__VA_ARGS__)))
#else
#define ATTR_NONNULL(...)
#endif
#endif

/* Every structure of the ABI is packed (no padding between fields). */
#if defined(__GNUC__)
#define DEMI_PACKED __attribute__((__packed__))
#else
#error "<demi/types.h> needs GCC or Clang (packed structures)"
#endif

#endif /* DEMI_CC_H */
