use proptest::prelude::*;

use super::*;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const AMZ_DATE: &str = "20130524T000000Z";

fn signer(seed: &str) -> ChunkSigner {
    ChunkSigner::for_tests(SECRET, AMZ_DATE, "us-east-1", seed)
}

/// Encodes `payload` the way SDKs do, cutting chunks at `sizes` (cycled; zeros skipped).
fn encode(
    payload: &[u8],
    sizes: &[usize],
    signer: Option<&ChunkSigner>,
    trailers: Option<&[(&str, &str)]>,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut previous = signer.map(|s| s.seed_signature().to_owned());
    let header = |out: &mut Vec<u8>, data: &[u8], previous: &mut Option<String>| {
        out.extend_from_slice(format!("{:X}", data.len()).as_bytes());
        if let (Some(signer), Some(prev)) = (signer, previous.as_mut()) {
            let sig = signer.chunk_signature(prev, data);
            out.extend_from_slice(format!(";chunk-signature={sig}").as_bytes());
            *prev = sig;
        }
        out.extend_from_slice(b"\r\n");
    };
    let mut rest = payload;
    let mut i = 0;
    while !rest.is_empty() {
        let size = sizes[i % sizes.len()].max(1).min(rest.len());
        i += 1;
        let (chunk, tail) = rest.split_at(size);
        header(&mut out, chunk, &mut previous);
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
        rest = tail;
    }
    header(&mut out, &[], &mut previous);
    if let Some(trailers) = trailers {
        for (name, value) in trailers {
            out.extend_from_slice(format!("{name}:{value}\r\n").as_bytes());
        }
        if let (Some(signer), Some(prev)) = (signer, previous.as_ref()) {
            let mut sorted = trailers.to_vec();
            sorted.sort();
            let canonical: String = sorted.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
            let sig = signer.trailer_signature(prev, canonical.as_bytes());
            out.extend_from_slice(format!("x-amz-trailer-signature:{sig}\r\n").as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Feeds `body` cut at `splits` and returns the decoded payload, or the first error (also from
/// `finish`).
fn decode_in_pieces(
    decoder: &mut ChunkedDecoder,
    body: &[u8],
    splits: &[usize],
) -> Result<Vec<u8>, ChunkError> {
    let mut out = Vec::new();
    let mut input = BytesMut::new();
    let mut rest = body;
    let mut i = 0;
    loop {
        while let Some(bytes) = decoder.decode(&mut input)? {
            out.extend_from_slice(&bytes);
        }
        if rest.is_empty() {
            break;
        }
        let n = if splits.is_empty() {
            rest.len()
        } else {
            splits[i % splits.len()].max(1).min(rest.len())
        };
        i += 1;
        input.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
    }
    decoder.finish()?;
    Ok(out)
}

const TRAILERS: &[(&str, &str)] = &[("x-amz-checksum-crc32c", "sOO8/Q==")];

#[test]
fn aws_streaming_example() {
    let seed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
    let payload = vec![b'a'; 65 * 1024];
    let body = encode(&payload, &[64 * 1024], Some(&signer(seed)), None);
    let text = String::from_utf8_lossy(&body);
    for sig in [
        "10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n",
        "400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n",
        "0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n",
    ] {
        assert!(text.contains(sig), "{sig}");
    }
    assert_eq!(body.len(), 66824, "the documented Content-Length");
    let mut decoder = ChunkedDecoder::new(Some(signer(seed)), false);
    assert_eq!(decode_in_pieces(&mut decoder, &body, &[]).unwrap(), payload);
    assert!(decoder.is_finished());
    assert_eq!(decoder.decoded_len(), 66560);
}

#[test]
fn aws_streaming_trailer_example() {
    let seed = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e";
    let payload = vec![b'a'; 65 * 1024];
    let body = encode(&payload, &[64 * 1024], Some(&signer(seed)), Some(TRAILERS));
    let text = String::from_utf8_lossy(&body);
    for sig in [
        "10000;chunk-signature=b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2\r\n",
        "400;chunk-signature=1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7\r\n",
        "0;chunk-signature=2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992\r\nx-amz-checksum-crc32c:sOO8/Q==\r\nx-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n\r\n",
    ] {
        assert!(text.contains(sig), "{sig}");
    }
    let mut decoder = ChunkedDecoder::new(Some(signer(seed)), true);
    assert_eq!(
        decode_in_pieces(&mut decoder, &body, &[7]).unwrap(),
        payload
    );
    assert_eq!(
        decoder.trailers(),
        [("x-amz-checksum-crc32c".to_owned(), "sOO8/Q==".to_owned())]
    );
}

#[test]
fn unsigned_trailer_body() {
    let body = b"B\r\nHello world\r\n0\r\nx-amz-checksum-crc32:i9aeUg==\r\n\r\n";
    let mut decoder = ChunkedDecoder::new(None, true);
    assert_eq!(
        decode_in_pieces(&mut decoder, body, &[1]).unwrap(),
        b"Hello world"
    );
    assert_eq!(decoder.trailers()[0].0, "x-amz-checksum-crc32");
}

#[test]
fn framing_errors() {
    let seed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
    let cases: &[(&[u8], bool, bool, ChunkErrorCode)] = &[
        (b"zz\r\n", false, true, ChunkErrorCode::InvalidRequest),
        (b"\r\n", false, true, ChunkErrorCode::InvalidRequest),
        (b"11111111111111111\r\n", false, true, ChunkErrorCode::InvalidRequest),
        (b"1\r\nab\r\n", false, true, ChunkErrorCode::InvalidRequest),
        (b"0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n", false, false, ChunkErrorCode::InvalidRequest),
        (b"0\r\nno-colon\r\n\r\n", false, true, ChunkErrorCode::InvalidRequest),
        (b"0\r\n\r\nextra", false, true, ChunkErrorCode::InvalidRequest),
        (b"1000001;chunk-signature=0000000000000000000000000000000000000000000000000000000000000000\r\n", true, false, ChunkErrorCode::InvalidRequest),
        (b"1\r\na\r\n", true, false, ChunkErrorCode::SignatureDoesNotMatch),
        (b"0\r\n\r\n", true, false, ChunkErrorCode::SignatureDoesNotMatch),
    ];
    for (body, signed, trailer, code) in cases {
        let mut decoder = ChunkedDecoder::new(signed.then(|| signer(seed)), *trailer);
        let err = decode_in_pieces(&mut decoder, body, &[]).unwrap_err();
        assert_eq!(err.code(), *code, "{}", String::from_utf8_lossy(body));
        // A failed decoder stays failed.
        assert!(decoder
            .decode(&mut BytesMut::from(&b"0\r\n\r\n"[..]))
            .is_err());
    }

    let mut long = vec![b'1'; MAX_LINE_LEN + 10];
    long.extend_from_slice(b"\r\n");
    let mut decoder = ChunkedDecoder::new(None, false);
    assert!(decode_in_pieces(&mut decoder, &long, &[]).is_err());

    let mut many = b"0\r\n".to_vec();
    for i in 0..=MAX_TRAILERS {
        many.extend_from_slice(format!("x-t-{i}:v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    let mut decoder = ChunkedDecoder::new(None, true);
    assert!(decode_in_pieces(&mut decoder, &many, &[]).is_err());
}

#[test]
fn signed_trailers_need_their_signature() {
    let seed = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e";
    let body = encode(b"data", &[4], Some(&signer(seed)), None);
    // The body ends with "\r\n" only: trailers announced but unsigned (no signature line).
    let mut with_trailer = body[..body.len() - 2].to_vec();
    with_trailer.extend_from_slice(b"x-amz-checksum-crc32:AAAAAA==\r\n\r\n");
    let mut decoder = ChunkedDecoder::new(Some(signer(seed)), true);
    let err = decode_in_pieces(&mut decoder, &with_trailer, &[]).unwrap_err();
    assert_eq!(err.code(), ChunkErrorCode::SignatureDoesNotMatch);
}

fn flip_regions(body: &[u8]) -> Vec<std::ops::Range<usize>> {
    // The 64 hex digits after each `chunk-signature=` and after `x-amz-trailer-signature:`.
    // Byte offsets: the payload is arbitrary bytes, not text.
    let find_all = |needle: &[u8]| -> Vec<usize> {
        body.windows(needle.len())
            .enumerate()
            .filter(|(_, w)| *w == needle)
            .map(|(i, _)| i + needle.len())
            .collect()
    };
    find_all(b";chunk-signature=")
        .into_iter()
        .chain(find_all(b"\r\nx-amz-trailer-signature:"))
        .map(|start| start..start + 64)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn round_trip_any_payload_and_split(
        payload in prop::collection::vec(any::<u8>(), 0..3000),
        sizes in prop::collection::vec(1usize..700, 1..5),
        splits in prop::collection::vec(1usize..500, 0..5),
        signed in any::<bool>(),
        trailer in any::<bool>(),
    ) {
        let seed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
        let s = signer(seed);
        let body = encode(&payload, &sizes, signed.then_some(&s), trailer.then_some(TRAILERS));
        let mut decoder = ChunkedDecoder::new(signed.then(|| s.clone()), trailer);
        prop_assert_eq!(decode_in_pieces(&mut decoder, &body, &splits).unwrap(), payload.clone());
        prop_assert_eq!(decoder.decoded_len(), payload.len() as u64);
        if trailer {
            prop_assert_eq!(decoder.trailers().len(), 1);
        }

        // Every proper prefix is incomplete or invalid.
        for cut in [0, body.len() / 3, body.len() / 2, body.len() - 1] {
            let mut decoder = ChunkedDecoder::new(signed.then(|| s.clone()), trailer);
            prop_assert!(decode_in_pieces(&mut decoder, &body[..cut], &splits).is_err());
        }
    }

    #[test]
    fn signed_bodies_never_yield_altered_bytes(
        payload in prop::collection::vec(any::<u8>(), 1..1500),
        sizes in prop::collection::vec(1usize..500, 1..4),
        trailer in any::<bool>(),
        position in any::<prop::sample::Index>(),
        mask in 1u8..=255,
    ) {
        let seed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
        let s = signer(seed);
        let body = encode(&payload, &sizes, Some(&s), trailer.then_some(TRAILERS));

        // Anywhere in the body: an error, or (a flip that changes nothing S3 signs, such as
        // the case of a size digit) the exact payload.
        let mut flipped = body.clone();
        let i = position.index(body.len());
        flipped[i] ^= mask;
        let mut decoder = ChunkedDecoder::new(Some(s.clone()), trailer);
        if let Ok(out) = decode_in_pieces(&mut decoder, &flipped, &[]) {
            prop_assert_eq!(out, payload.clone());
        }

        // In chunk data or a signature: always an error.
        let regions = flip_regions(&body);
        let region = &regions[position.index(regions.len())];
        let mut flipped = body.clone();
        flipped[region.start + (i % 64)] ^= mask;
        let mut decoder = ChunkedDecoder::new(Some(s.clone()), trailer);
        prop_assert!(decode_in_pieces(&mut decoder, &flipped, &[]).is_err());

        let data_start = body.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
        let first_len = sizes[0].min(payload.len());
        let mut flipped = body.clone();
        flipped[data_start + i % first_len] ^= mask;
        let mut decoder = ChunkedDecoder::new(Some(s.clone()), trailer);
        prop_assert!(decode_in_pieces(&mut decoder, &flipped, &[]).is_err());
    }

    #[test]
    fn arbitrary_input_never_panics(
        body in prop::collection::vec(any::<u8>(), 0..600),
        signed in any::<bool>(),
        trailer in any::<bool>(),
        splits in prop::collection::vec(1usize..50, 0..4),
    ) {
        let s = signer("4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9");
        let mut decoder = ChunkedDecoder::new(signed.then_some(s), trailer);
        let _ = decode_in_pieces(&mut decoder, &body, &splits);
    }
}
