/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz_meta_decode — the checkpoint payload decoder (vlun_meta_decode) on
 * arbitrary bytes. It must never crash or leak, and whatever it accepts
 * must be a valid description that survives a round trip: encode it,
 * decode that again (must succeed), encode again — the two encodings are
 * byte for byte the same.
 */
#include <string.h>

#include "fuzz.h"
#include "meta.h"
#include "vlun.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	vlun_set_log(NULL, VLUN_LOG_ERR, NULL);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vlun_pool_desc *d = NULL, *d2 = NULL;
	uint8_t *b1 = NULL, *b2 = NULL;
	size_t l1 = 0, l2 = 0;
	char why[256] = "";
	int r;

	r = vlun_meta_decode(data, size, &d, why, sizeof(why));
	if (r < 0) {
		FUZZ_CHECK(d == NULL, "output set on failure");
		FUZZ_CHECK(r == -EUCLEAN || r == -EPROTONOSUPPORT || r == -ENOMEM, "unexpected error %d", r);
		FUZZ_CHECK(why[0] != '\0', "refused (%d) without a reason", r);
		return 0;
	}
	FUZZ_CHECK(d != NULL, "success without a description");
	FUZZ_CHECK(vlun_pool_desc_validate(d, why, sizeof(why)) == 0, "accepted an invalid description: %s", why);
	FUZZ_CHECK(vlun_meta_encode(d, &b1, &l1) == 0, "cannot encode what was decoded");
	r = vlun_meta_decode(b1, l1, &d2, why, sizeof(why));
	FUZZ_CHECK(r == 0, "cannot decode its own encoding: %s", why);
	FUZZ_CHECK(vlun_meta_encode(d2, &b2, &l2) == 0, "cannot encode the second decode");
	FUZZ_CHECK(l1 == l2 && memcmp(b1, b2, l1) == 0, "round trip changed the encoding (%zu vs %zu bytes)", l1, l2);
	free(b1);
	free(b2);
	vlun_pool_desc_free(d);
	vlun_pool_desc_free(d2);
	return 0;
}
