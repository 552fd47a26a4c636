// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title IProofChallenges
/// @notice Challenges of relayer receipts for provable models, judged by a zero-knowledge proof.
///
/// A model owner registers, per model version, the Halo2 verifier contract of the version's circuit
/// and the Poseidon hash of its weights (the proof's public instance 0). A licence holder who opened
/// a dispute on the escrow (`RentalEscrow.openDispute`) challenges one receipt of that model: the
/// receipt's fields, the relayer that signed it, and the relayer's EIP-712 `ProofClaim` binding the
/// receipt to the circuit's public inputs and outputs (`instancesHash`). Anyone may answer within
/// the answer window with a proof the version's verifier accepts, whose instance 0 is the registered
/// weights hash and whose other instances hash to `instancesHash`: the dispute is then resolved for
/// the payees (`Release`). With no valid answer by the deadline, anyone may resolve the challenge
/// for the challenger: the dispute is resolved `Refund` and the relayer gets a strike.
///
/// IMPORTANT: this contract holds the escrow's ARBITER_ROLE and resolves only disputes it has
/// recorded a challenge for. A human arbiter may still resolve the same dispute first; the
/// challenge then can no longer be answered or resolved here (`DisputeNotOpen` from the escrow).
/// IMPORTANT: a proof is only as sound as the structured reference string (SRS) the verifier was
/// made from: a verifier made from a locally generated SRS can be fooled by whoever generated it.
/// Clients check a registered verifier against the pinned public SRS (docs/ZK.md).
interface IProofChallenges {
    // ---------------------------------------------------------------- types
    /// @notice The signed receipt a relayer returned with a prediction (docs/RELAYER.md).
    struct Receipt {
        uint256 modelId;
        string weightsCid;
        bytes32 inputsHash;
        bytes32 outputsHash;
        uint256 timestamp;
    }

    /// @notice The circuit registered for one model version.
    /// @param verifier The Halo2 verifier contract (`verifyProof(bytes,uint256[])`).
    /// @param weightsHash The Poseidon hash of the weights, as the proof's instance 0.
    struct Circuit {
        address verifier;
        uint256 weightsHash;
    }

    enum Status {
        None,
        Open, // waiting for an answer until `deadline`
        Answered, // a valid proof was given: the dispute was released to the payees
        Upheld // no valid answer in time: the dispute was refunded to the challenger
    }

    /// @notice One challenge. `deadline` is in seconds (Unix time).
    struct Challenge {
        uint256 disputeId;
        address challenger;
        address relayer;
        address verifier;
        uint256 weightsHash;
        bytes32 instancesHash;
        uint64 deadline;
        Status status;
    }

    // ---------------------------------------------------------------- errors
    error NotModelOwner(uint256 modelId, address caller);
    error ZeroVerifier();
    error NoCircuit(uint256 modelId, bytes32 weightsCidHash);
    error NotDisputePayer(uint256 disputeId, address caller);
    error DisputeNotOpen(uint256 disputeId);
    error WrongModel(uint256 disputeId, uint256 modelId);
    error ReceiptTooOld(uint256 timestamp, uint256 windowEnd);
    error ReceiptInFuture(uint256 timestamp);
    error RelayerNotAuthorised(uint256 modelId, address relayer);
    error BadClaimSignature(address relayer);
    error AlreadyChallenged(bytes32 receiptDigest);
    error DisputeAlreadyChallenged(uint256 disputeId);
    error NotOpen(uint256 challengeId);
    error AnswerWindowClosed(uint256 challengeId, uint64 deadline);
    error AnswerWindowOpen(uint256 challengeId, uint64 deadline);
    error WrongWeightsHash(uint256 expected, uint256 given);
    error WrongInstances(bytes32 expected, bytes32 given);
    error InvalidProof(uint256 challengeId);

    // ---------------------------------------------------------------- events
    /// @notice Version `version` of model `modelId` (weights `weightsCidHash`) is provable with `verifier`.
    event CircuitSet(
        uint256 indexed modelId, uint256 indexed version, bytes32 weightsCidHash, address verifier, uint256 weightsHash
    );
    /// @notice `challenger` challenged receipt `receiptDigest`; answers are accepted until `deadline` (seconds).
    event Challenged(
        uint256 indexed challengeId,
        uint256 indexed disputeId,
        address indexed relayer,
        address challenger,
        bytes32 receiptDigest,
        bytes32 instancesHash,
        uint64 deadline
    );
    /// @notice `prover` answered challenge `challengeId` with a valid proof; the dispute was released.
    event Answered(uint256 indexed challengeId, address indexed prover);
    /// @notice Challenge `challengeId` went unanswered; the dispute was refunded and `relayer` got a strike.
    event Upheld(uint256 indexed challengeId, address indexed relayer, uint256 strikes);

    // ---------------------------------------------------------------- functions
    /// @notice Register the circuit of version `version` of model `modelId`; the model's owner only.
    /// Overwrites an earlier registration of the same version (open challenges keep theirs).
    function setCircuit(uint256 modelId, uint256 version, address verifier, uint256 weightsHash) external;

    /// @notice Challenge `receipt`, signed by `relayer`, under dispute `disputeId` (opened by the caller).
    /// @param instancesHash keccak256 of the circuit's public inputs and outputs (uint256 each, packed).
    /// @param claimSignature The relayer's 65-byte signature of `ProofClaim(receiptDigest, instancesHash)`.
    function challenge(
        uint256 disputeId,
        Receipt calldata receipt,
        address relayer,
        bytes32 instancesHash,
        bytes calldata claimSignature
    ) external returns (uint256 challengeId);

    /// @notice Answer challenge `challengeId` with a proof; anyone may call.
    /// @param instances All public instances: the weights hash first, then inputs and outputs.
    function answer(uint256 challengeId, bytes calldata proof, uint256[] calldata instances) external;

    /// @notice Resolve an unanswered challenge for its challenger once its deadline has passed.
    function resolve(uint256 challengeId) external;

    function circuitOf(uint256 modelId, string calldata weightsCid) external view returns (Circuit memory);
    function challengeOf(uint256 challengeId) external view returns (Challenge memory);
    /// @notice How many challenges against `relayer` went unanswered.
    function strikesOf(address relayer) external view returns (uint256);
    /// @notice The EIP-712 digest of a receipt in the relayers' domain (what `challenge` hashes).
    function receiptDigest(Receipt calldata receipt) external view returns (bytes32);
    /// @notice The EIP-712 digest of `ProofClaim(receiptDigest, instancesHash)` the relayer signs.
    function claimDigest(bytes32 receiptDigest_, bytes32 instancesHash) external view returns (bytes32);
    /// @notice Seconds a challenge may be answered after it is opened.
    function answerWindow() external view returns (uint64);
}
